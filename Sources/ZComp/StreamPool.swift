import Dispatch
import Glibc
import Synchronization
import ZSync

/// A fixed set of compression streams of one codec, each behind its own mutex.
///
/// A caller takes any free stream; when every stream is busy it sleeps on a
/// semaphore (never spins) until one is handed back. Nothing else is locked
/// while a stream compresses, so a slow codec holds exactly one stream.
public final class StreamPool: Sendable {
    /// The codec every stream of this pool runs.
    public let codec: any Codec
    private let streams: [Locked<any CodecStream>]
    /// Counts streams that no caller has claimed.
    private let available: DispatchSemaphore
    /// Where the next search for a free stream starts, to spread callers.
    private let hint = Atomic<Int>(0)
    /// Told how long each page took, when set (looked up once, not per page).
    private let compressTimer: (any CodecTimer)?
    private let decompressTimer: (any CodecTimer)?

    /// Creates `count` streams (default: the number of online cores).
    public init(codec: any Codec, count: Int = StreamPool.defaultCount, observer: (any CodecObserver)? = nil) throws(CodecError) {
        precondition(count > 0, "a stream pool needs at least one stream")
        self.codec = codec
        compressTimer = observer?.timer(algorithm: codec.name, operation: .compress)
        decompressTimer = observer?.timer(algorithm: codec.name, operation: .decompress)
        var made: [Locked<any CodecStream>] = []
        for _ in 0..<count { made.append(Locked(try codec.makeStream())) }
        streams = made
        available = DispatchSemaphore(value: count)
    }

    /// The number of online cores, at least 1.
    public static var defaultCount: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// The number of streams.
    public var count: Int { streams.count }

    /// Runs `body` with exclusive use of one stream, sleeping while all are busy.
    func withStream<R: Sendable, E: Error>(
        _ body: (any CodecStream) throws(E) -> R
    ) throws(E) -> R {
        available.wait()
        defer { available.signal() }
        return try onClaimedStream(body)
    }

    /// Runs `body` with a stream only if one is free right now; nil (and `body` not run) otherwise.
    func withStreamIfFree<R: Sendable, E: Error>(
        _ body: (any CodecStream) throws(E) -> R
    ) throws(E) -> R? {
        guard available.wait(timeout: .now()) == .success else { return nil }
        defer { available.signal() }
        return try onClaimedStream(body)
    }

    /// Runs `body` on an unlocked stream; the caller holds one count of the semaphore, which
    /// guarantees a stream is unlocked or about to be (a holder unlocks before it signals).
    private func onClaimedStream<R: Sendable, E: Error>(_ body: (any CodecStream) throws(E) -> R) throws(E) -> R {
        let start = hint.wrappingAdd(1, ordering: .relaxed).oldValue
        while true {
            for offset in 0..<streams.count {
                let i = (start &+ offset) % streams.count
                if let result = try streams[i].withLockIfAvailable({ stream throws(E) in try body(stream) }) {
                    return result
                }
            }
        }
    }

    /// `compress` for a thread that must not sleep: nil at once when every stream is busy.
    public func compressIfFree(
        _ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> CompressedLength? {
        let start = compressTimer == nil ? 0 : MonotonicClock.nanoseconds()
        let result = try withStreamIfFree { stream throws(CodecError) in CompressedLength(length: try stream.compress(page, into: dst)) }
        if result != nil { compressTimer?.record(nanoseconds: MonotonicClock.nanoseconds() &- start) }
        return result
    }

    /// `decompress` for a thread that must not sleep: false at once when every stream is busy.
    public func decompressIfFree(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> Bool {
        let start = decompressTimer == nil ? 0 : MonotonicClock.nanoseconds()
        if try !codec.decompressWithoutStream(src, into: page) {
            guard try withStreamIfFree({ stream throws(CodecError) in try stream.decompress(src, into: page) }) != nil else { return false }
        }
        decompressTimer?.record(nanoseconds: MonotonicClock.nanoseconds() &- start)
        return true
    }

    /// Compresses one page with a pooled stream; nil when it does not fit in less than a page.
    public func compress(
        _ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> Int? {
        let start = compressTimer == nil ? 0 : MonotonicClock.nanoseconds()
        defer { compressTimer?.record(nanoseconds: MonotonicClock.nanoseconds() &- start) }
        return try withStream { stream throws(CodecError) in try stream.compress(page, into: dst) }
    }

    /// Restores one page with a pooled stream.
    public func decompress(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer
    ) throws(CodecError) {
        let start = decompressTimer == nil ? 0 : MonotonicClock.nanoseconds()
        defer { decompressTimer?.record(nanoseconds: MonotonicClock.nanoseconds() &- start) }
        if try codec.decompressWithoutStream(src, into: page) { return }
        try withStream { stream throws(CodecError) in try stream.decompress(src, into: page) }
    }
}

/// What `compressIfFree` produced: the compressed length, nil when the page does not fit
/// in less than a page.
public struct CompressedLength: Sendable, Equatable {
    public let length: Int?
}

/// What a codec did with one page, for metrics.
public enum CodecOperation: String, Sendable {
    case compress, decompress
}

/// Hands stream pools the timers that are told the duration of every page they compress or
/// decompress (including any wait for a free stream), for latency histograms.
public protocol CodecObserver: Sendable {
    func timer(algorithm: String, operation: CodecOperation) -> any CodecTimer
}

/// Records one duration.
public protocol CodecTimer: Sendable {
    func record(nanoseconds: UInt64)
}
