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

    public init(_ errno: Errno, _ reason: String) {
        self.errno = errno
        self.reason = reason
    }

    /// `EINVAL: <why>`, the text after `zramd: ` in an error body.
    public var description: String { "\(errno.rawValue): \(reason)" }
}
