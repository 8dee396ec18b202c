/// Why a codec refused or failed.
public enum CodecError: Error, Equatable, Sendable {
    /// No backend has this name.
    case unknownAlgorithm(String)
    /// The compressed input is damaged or does not decode to exactly one page.
    case corrupt(String)
    /// A parameter (level, dictionary, window bits) the backend does not accept.
    case invalidParams(String)
    /// The library failed for another reason (out of memory, internal error).
    case failed(String)
}

/// Per-algorithm tunables, what zram's `algorithm_params` sets.
public struct CodecParams: Sendable, Equatable {
    /// Compression level (lz4: acceleration); nil means the backend's default.
    public var level: Int?
    /// Raw dictionary bytes; a backend digests them once and shares the result read-only.
    public var dictionary: [UInt8]?
    /// deflate window bits (9...15); nil means 15.
    public var deflateWinbits: Int?

    public init(level: Int? = nil, dictionary: [UInt8]? = nil, deflateWinbits: Int? = nil) {
        self.level = level
        self.dictionary = dictionary
        self.deflateWinbits = deflateWinbits
    }
}

/// One configured algorithm: parameters validated, shared state (dictionaries) digested.
///
/// Like a kernel `backend_*.c` ops table: it only makes streams; the work happens in them.
public protocol Codec: Sendable {
    /// The zram name of the algorithm (`lz4`, `zstd`, …).
    var name: String { get }
    /// True when one page compresses in a few microseconds (lz4, lzo: ≈ 4.5 µs per 4 KiB
    /// corpus page), well under a hand-off to another thread (≈ 15 µs), so a server may
    /// compress it on a thread that other requests share. zstd (≥ 13 µs), lz4hc and deflate
    /// (≈ 70 µs) are not (`make bench-store`, docs/HTTP_ENGINE.md).
    var isFast: Bool { get }
    /// The page size every stream compresses and restores.
    var pageSize: Int { get }
    /// Creates one stream with its own library contexts and scratch buffers.
    func makeStream() throws(CodecError) -> any CodecStream
    /// Restores one page with no stream, for a backend whose decoder keeps no state (lz4,
    /// lz4hc, lzo): a read then claims nothing from the pool. False (nothing done) when the
    /// backend decodes only with a stream.
    /// - Throws: as `CodecStream.decompress`.
    func decompressWithoutStream(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) -> Bool
}

extension Codec {
    public var isFast: Bool { false }
    public func decompressWithoutStream(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) -> Bool {
        false
    }
}

/// A compression context used by one thread at a time (the pool's mutex guarantees it).
public protocol CodecStream: AnyObject {
    /// Compresses one page.
    /// - Parameters:
    ///   - page: exactly `pageSize` bytes.
    ///   - dst: at least `pageSize` bytes; nothing is written past `pageSize - 1`.
    /// - Returns: the compressed length, or nil when the result would not be smaller than the page.
    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int?

    /// Restores one page.
    /// - Parameters:
    ///   - src: the compressed bytes, exactly as `compress` produced them.
    ///   - page: at least `pageSize` bytes; nothing is written past `pageSize`.
    /// - Throws: `CodecError.corrupt` unless `src` decodes to exactly `pageSize` bytes.
    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError)
}
