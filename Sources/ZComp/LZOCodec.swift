import CLZO

/// lzo (`backend_lzo.c`): LZO1X-1, no parameters.
public struct LZOCodec: Codec {
    public let name = "lzo"
    public var isFast: Bool { true }
    public let pageSize: Int

    public init(params: CodecParams = CodecParams(), pageSize: Int = 4096) throws(CodecError) {
        try Backend.checkPageSize(pageSize, "lzo")
        try Backend.rejectLevel(params, "lzo")
        try Backend.rejectDictionary(params, "lzo")
        try Backend.rejectWinbits(params, "lzo")
        try LZOCodec.initialized.get()
        self.pageSize = pageSize
    }

    /// `lzo_init()`, run once per process (a C macro, spelled out here).
    private static let initialized: Result<Void, CodecError> = {
        let status = __lzo_init_v2(
            UInt32(LZO_VERSION), Int32(MemoryLayout<CShort>.size), Int32(MemoryLayout<CInt>.size),
            Int32(MemoryLayout<CLong>.size), Int32(MemoryLayout<UInt32>.size),
            Int32(MemoryLayout<lzo_uint>.size), Int32(MemoryLayout<UnsafeMutablePointer<UInt8>>.size),
            Int32(MemoryLayout<UnsafeMutablePointer<CChar>>.size), Int32(MemoryLayout<UnsafeMutableRawPointer>.size),
            Int32(MemoryLayout<lzo_callback_t>.size))
        return status == LZO_E_OK ? .success(()) : .failure(.failed("lzo: lzo_init failed (\(status))"))
    }()

    public func makeStream() throws(CodecError) -> any CodecStream {
        LZOStream(pageSize: pageSize)
    }

    public func decompressWithoutStream(
        _ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer
    ) throws(CodecError) -> Bool {
        try LZOStream.decompress(src, into: page, pageSize: pageSize)
        return true
    }
}

/// One lzo context: work memory plus a worst-case output buffer, because lzo1x_1_compress
/// takes no output limit and may expand a page to `page + page/16 + 64 + 3` bytes.
final class LZOStream: CodecStream {
    private let pageSize: Int
    private let workMemory: UnsafeMutableRawPointer
    private let scratch: UnsafeMutableRawBufferPointer

    /// LZO1X_1_MEM_COMPRESS: 16384 dictionary entries of one pointer each.
    static let workMemorySize = 16384 * MemoryLayout<UnsafeMutablePointer<UInt8>>.size

    init(pageSize: Int) {
        self.pageSize = pageSize
        workMemory = .allocate(byteCount: Self.workMemorySize, alignment: 16)
        scratch = .allocate(byteCount: pageSize + pageSize / 16 + 64 + 3, alignment: 16)
    }

    deinit {
        workMemory.deallocate()
        scratch.deallocate()
    }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        Backend.checkCompressBuffers(page, dst, pageSize)
        var length = lzo_uint(scratch.count)
        let status = lzo1x_1_compress(
            page.baseAddress!.assumingMemoryBound(to: UInt8.self), lzo_uint(pageSize),
            scratch.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, workMemory)
        guard status == LZO_E_OK else { throw .failed("lzo: lzo1x_1_compress failed (\(status))") }
        guard length < pageSize else { return nil }
        dst.baseAddress!.copyMemory(from: scratch.baseAddress!, byteCount: Int(length))
        return Int(length)
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        try Self.decompress(src, into: page, pageSize: pageSize)
    }

    /// The decoder, which needs no stream state.
    static func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer, pageSize: Int) throws(CodecError) {
        let (s, p) = try Backend.checkDecompressBuffers(src, page, pageSize)
        var length = lzo_uint(pageSize)
        let status = lzo1x_decompress_safe(
            s.assumingMemoryBound(to: UInt8.self), lzo_uint(src.count),
            p.assumingMemoryBound(to: UInt8.self), &length, nil)
        guard status == LZO_E_OK else { throw .corrupt("lzo: \(Self.describe(status))") }
        if length != pageSize { throw .corrupt("lzo: decoded \(length) bytes, expected \(pageSize)") }
    }

    /// lzo has no message function; these are the decoder's errors from lzoconf.h.
    static func describe(_ status: Int32) -> String {
        switch status {
        case LZO_E_INPUT_OVERRUN: "input overrun (truncated)"
        case LZO_E_OUTPUT_OVERRUN: "output overrun (decodes to more than a page)"
        case LZO_E_LOOKBEHIND_OVERRUN: "lookbehind overrun"
        case LZO_E_EOF_NOT_FOUND: "end of stream not found"
        case LZO_E_INPUT_NOT_CONSUMED: "input not consumed (bytes after the end of stream)"
        default: "error \(status)"
        }
    }
}
