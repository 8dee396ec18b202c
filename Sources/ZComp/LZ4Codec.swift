import CLZ4

/// lz4 (`backend_lz4.c`): `level` is the acceleration, 1 (default, best ratio) to 65537.
public struct LZ4Codec: Codec {
    public let name = "lz4"
    public var isFast: Bool { true }
    public let pageSize: Int
    /// LZ4's acceleration factor; larger is faster and compresses less.
    let acceleration: Int

    /// 1...LZ4_ACCELERATION_MAX; lz4 clamps larger values, we refuse them.
    static let accelerations = 1...65537

    public init(params: CodecParams = CodecParams(), pageSize: Int = 4096) throws(CodecError) {
        try Backend.checkPageSize(pageSize, "lz4")
        try Backend.rejectDictionary(params, "lz4")
        try Backend.rejectWinbits(params, "lz4")
        acceleration = try Backend.level(params, "lz4", default: 1, range: Self.accelerations)
        self.pageSize = pageSize
    }

    public func decompressWithoutStream(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> Bool {
        try LZ4Block.decompress(src, into: page, pageSize: pageSize)
        return true
    }

    public func makeStream() throws(CodecError) -> any CodecStream {
        LZ4Stream(pageSize: pageSize, acceleration: Int32(acceleration))
    }
}

/// One lz4 context: the `LZ4_stream_t` state that `LZ4_compress_fast_extState` reuses.
final class LZ4Stream: CodecStream {
    private let pageSize: Int
    private let acceleration: Int32
    private let state: UnsafeMutableRawPointer

    init(pageSize: Int, acceleration: Int32) {
        self.pageSize = pageSize
        self.acceleration = acceleration
        state = .allocate(byteCount: Int(LZ4_sizeofState()), alignment: 16)
    }

    deinit { state.deallocate() }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        Backend.checkCompressBuffers(page, dst, pageSize)
        // Capacity pageSize - 1: lz4 gives up (returns 0) rather than write past it.
        let n = LZ4_compress_fast_extState(
            state, page.baseAddress!.assumingMemoryBound(to: CChar.self),
            dst.baseAddress!.assumingMemoryBound(to: CChar.self),
            Int32(pageSize), Int32(pageSize - 1), acceleration)
        return n > 0 ? Int(n) : nil
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        try LZ4Block.decompress(src, into: page, pageSize: pageSize)
    }
}

/// The lz4 block decoder lz4 and lz4hc share.
enum LZ4Block {
    static func decompress(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer, pageSize: Int
    ) throws(CodecError) {
        let (s, p) = try Backend.checkDecompressBuffers(src, page, pageSize)
        guard src.count <= Int(Int32.max) else { throw .corrupt("lz4: input of \(src.count) bytes is too long") }
        // The safe decoder never reads past src.count nor writes past pageSize.
        let n = LZ4_decompress_safe(
            s.assumingMemoryBound(to: CChar.self), p.assumingMemoryBound(to: CChar.self),
            Int32(src.count), Int32(pageSize))
        if n < 0 { throw .corrupt("lz4: malformed block (error at input offset \(-Int(n) - 1))") }
        if n != pageSize { throw .corrupt("lz4: decoded \(n) bytes, expected \(pageSize)") }
    }
}
