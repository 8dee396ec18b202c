import ZramBacking

/// The errno names zram's attributes return, which zramd reports the same way.
public enum Errno: String, Sendable, Equatable, CaseIterable {
    case EINVAL, ERANGE, E2BIG, EBUSY, EAGAIN, ENOMEM, ENOSPC, EIO, ENODEV
    /// No such attribute (a missing sysfs file).
    case ENOENT
    /// The attribute cannot be read, or cannot be written (a sysfs file without that mode bit).
    case EACCES
}

/// A refused request: zram's errno and a one-line reason for people.
public struct ZramError: Error, Equatable, Sendable, CustomStringConvertible {
    public let errno: Errno
    public let reason: String
    /// The device itself does not exist (or was removed): HTTP 404, where ENODEV otherwise
    /// means "no backing device" (409).
    public let deviceMissing: Bool

    public init(_ errno: Errno, _ reason: String) {
        self.errno = errno
        self.reason = reason
        deviceMissing = false
    }

    private init(missing name: String) {
        errno = .ENODEV
        reason = "there is no \(name)"
        deviceMissing = true
    }

    /// ENODEV for a device that does not exist, or was removed while a request held it.
    public static func noDevice(_ name: String) -> ZramError { ZramError(missing: name) }

    /// `EINVAL: <why>`, the text after `zramd: ` in an error body.
    public var description: String { "\(errno.rawValue): \(reason)" }
}

extension Errno {
    /// zram's errno for a backing-store failure.
    init(_ error: BackingError) {
        self =
            switch error {
            case .noSpace: .ENOSPC
            case .io, .notFound: .EIO
            case .invalidPath, .invalidArgument: .EINVAL
            case .busy: .EBUSY
            case .closed: .ENODEV
            case .batchFailed(_, let cause): Errno(cause)
            }
    }
}
