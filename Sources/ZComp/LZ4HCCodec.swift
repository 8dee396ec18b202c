import CLZ4

/// lz4hc (`backend_lz4hc.c`): the lz4 format with a slower, better matcher; `level` 1...12, default 9.
public struct LZ4HCCodec: Codec {
    public let name = "lz4hc"
    public let pageSize: Int
    public let level: Int

    /// LZ4HC_CLEVEL_MIN...LZ4HC_CLEVEL_MAX.
    package static let levels = 1...12

    public init(params: CodecParams = CodecParams(), pageSize: Int = 4096) throws(CodecError) {
        try Backend.checkPageSize(pageSize, "lz4hc")
        try Backend.rejectDictionary(params, "lz4hc")
        try Backend.rejectWinbits(params, "lz4hc")
        level = try Backend.level(params, "lz4hc", default: 9, range: Self.levels)
        self.pageSize = pageSize
    }

    public func decompressWithoutStream(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> Bool {
        try LZ4Block.decompress(src, into: page, pageSize: pageSize)
        return true
    }

    public func makeStream() throws(CodecError) -> any CodecStream {
        LZ4HCStream(pageSize: pageSize, level: Int32(level))
    }
}

/// One lz4hc context: the `LZ4_streamHC_t` state that `LZ4_compress_HC_extStateHC` reuses.
final class LZ4HCStream: CodecStream {
    private let pageSize: Int
    private let level: Int32
    private let state: UnsafeMutableRawPointer

    init(pageSize: Int, level: Int32) {
        self.pageSize = pageSize
        self.level = level
        state = .allocate(byteCount: Int(LZ4_sizeofStateHC()), alignment: 16)
    }

    deinit { state.deallocate() }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        Backend.checkCompressBuffers(page, dst, pageSize)
        let n = LZ4_compress_HC_extStateHC(
            state, page.baseAddress!.assumingMemoryBound(to: CChar.self),
            dst.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(pageSize), Int32(pageSize - 1), level)
        return n > 0 ? Int(n) : nil
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        try LZ4Block.decompress(src, into: page, pageSize: pageSize)
    }
}
