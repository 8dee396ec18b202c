import CZstd

/// zstd (`backend_zstd.c`): `level` ZSTD_minCLevel()...ZSTD_maxCLevel(), default 3 (0 also
/// means zstd's default); an optional dictionary, digested once into a `ZSTD_CDict` and a
/// `ZSTD_DDict` that every stream of this codec shares.
///
/// `@unchecked Sendable`: the only mutable-looking state is the two digested dictionaries,
/// which zstd documents as read-only once created ("can be shared by multiple threads
/// concurrently"); they are created in `init`, never changed, and freed in `deinit` when
/// no stream can reference them any more (each stream holds a strong reference to the codec).
public final class ZstdCodec: Codec, @unchecked Sendable {
    public let name = "zstd"
    public let pageSize: Int
    public let level: Int
    /// Read by the streams, which keep the codec alive while they use these.
    fileprivate let cdict: OpaquePointer?
    fileprivate let ddict: OpaquePointer?

    package static var levels: ClosedRange<Int> { Int(ZSTD_minCLevel())...Int(ZSTD_maxCLevel()) }

    public init(params: CodecParams = CodecParams(), pageSize: Int = 4096) throws(CodecError) {
        try Backend.checkPageSize(pageSize, "zstd")
        try Backend.rejectWinbits(params, "zstd")
        let level = try Backend.level(params, "zstd", default: 3, range: Self.levels)
        self.level = level
        self.pageSize = pageSize
        guard let dictionary = params.dictionary else {
            cdict = nil
            ddict = nil
            return
        }
        guard !dictionary.isEmpty else { throw .invalidParams("zstd: the dictionary is empty") }
        let digested = dictionary.withUnsafeBytes { d in
            (ZSTD_createCDict(d.baseAddress, d.count, Int32(level)), ZSTD_createDDict(d.baseAddress, d.count))
        }
        guard let c = digested.0, let d = digested.1 else {
            ZSTD_freeCDict(digested.0)
            ZSTD_freeDDict(digested.1)
            throw .invalidParams("zstd rejected the dictionary (malformed zstd dictionary header?)")
        }
        cdict = c
        ddict = d
    }

    deinit {
        ZSTD_freeCDict(cdict)
        ZSTD_freeDDict(ddict)
    }

    /// The dictionary ID written into every frame (0 for none or a raw-content dictionary).
    package var dictionaryID: UInt32 { cdict.map { UInt32(ZSTD_getDictID_fromCDict($0)) } ?? 0 }

    public func makeStream() throws(CodecError) -> any CodecStream {
        try ZstdStream(codec: self)
    }

    /// Trains a dictionary of at most `capacity` bytes from `samples`, cut into pages of `pageSize`
    /// (`ZDICT_trainFromBuffer`), for `CodecParams.dictionary`.
    ///
    /// ZDICT builds the dictionary from the first three quarters of the samples and scores
    /// candidates on the rest, so pass pages in a mixed (shuffled) order, not memory order.
    package static func trainDictionary(
        samples: UnsafeRawBufferPointer, pageSize: Int = 4096, capacity: Int = 64 << 10
    ) throws(CodecError) -> [UInt8] {
        guard pageSize > 0, samples.count >= pageSize, capacity > 0, let base = samples.baseAddress else {
            throw .invalidParams("zstd: no samples to train a dictionary from")
        }
        let count = samples.count / pageSize
        let sizes = [Int](repeating: pageSize, count: count)
        var dictionary = [UInt8](repeating: 0, count: capacity)
        let n = dictionary.withUnsafeMutableBytes { d in
            ZDICT_trainFromBuffer(d.baseAddress, d.count, base, sizes, UInt32(count))
        }
        if ZDICT_isError(n) != 0 {
            throw .failed("zstd: dictionary training failed: \(String(cString: ZDICT_getErrorName(n)))")
        }
        dictionary.removeSubrange(n...)
        return dictionary
    }
}

/// One zstd context pair; compression uses the codec's level or its CDict.
final class ZstdStream: CodecStream {
    private let codec: ZstdCodec
    private let pageSize: Int
    private let level: Int32
    private let cctx: OpaquePointer
    private let dctx: OpaquePointer
    private let cdict: OpaquePointer?
    private let ddict: OpaquePointer?

    init(codec: ZstdCodec) throws(CodecError) {
        guard let c = ZSTD_createCCtx() else { throw .failed("zstd: cannot allocate a compression context") }
        guard let d = ZSTD_createDCtx() else {
            ZSTD_freeCCtx(c)
            throw .failed("zstd: cannot allocate a decompression context")
        }
        self.codec = codec
        pageSize = codec.pageSize
        level = Int32(codec.level)
        cctx = c
        dctx = d
        cdict = codec.cdict
        ddict = codec.ddict
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        ZSTD_freeDCtx(dctx)
    }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        Backend.checkCompressBuffers(page, dst, pageSize)
        let n =
            if let cdict {
                ZSTD_compress_usingCDict(cctx, dst.baseAddress, pageSize - 1, page.baseAddress, pageSize, cdict)
            } else {
                ZSTD_compressCCtx(cctx, dst.baseAddress, pageSize - 1, page.baseAddress, pageSize, level)
            }
        if ZSTD_isError(n) != 0 {
            if ZstdError.code(n) == ZstdError.dstSizeTooSmall { return nil }
            throw .failed("zstd: \(String(cString: ZSTD_getErrorName(n)))")
        }
        return n
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        let (s, p) = try Backend.checkDecompressBuffers(src, page, pageSize)
        let n =
            if let ddict {
                ZSTD_decompress_usingDDict(dctx, p, pageSize, s, src.count, ddict)
            } else {
                ZSTD_decompressDCtx(dctx, p, pageSize, s, src.count)
            }
        if ZSTD_isError(n) != 0 {
            if ZstdError.code(n) == ZstdError.memoryAllocation {
                throw .failed("zstd: \(String(cString: ZSTD_getErrorName(n)))")
            }
            throw .corrupt("zstd: \(String(cString: ZSTD_getErrorName(n)))")
        }
        if n != pageSize { throw .corrupt("zstd: decoded \(n) bytes, expected \(pageSize)") }
    }
}

/// The two `ZSTD_ErrorCode`s we act on. zstd_errors.h is not in the CZstd module map, so
/// `ZSTD_getErrorCode` (`0 - result`) is spelled out; the header guarantees codes < 100 stable.
enum ZstdError {
    static let memoryAllocation = 64
    static let dstSizeTooSmall = 70

    static func code(_ result: Int) -> Int { Int(bitPattern: 0 &- UInt(bitPattern: result)) }
}
