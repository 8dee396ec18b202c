import CZlib

/// deflate (`backend_deflate.c`): zlib raw deflate with the kernel backend's defaults —
/// `level` −1...9 (default −1, zlib's Z_DEFAULT_COMPRESSION, which is 6), a window of
/// `deflateWinbits` 9...15 bits (default 11) and memory level 9 (MAX_MEM_LEVEL). The kernel
/// reads a negative winbits as raw deflate and a positive one as the zlib format; zramd
/// stores raw deflate either way (the zlib header and checksum would only cost bytes), so
/// −11 and 11 mean the same window. A page compressed with one window size decodes only with
/// at least that window, so keep winbits with the data.
public struct DeflateCodec: Codec {
    public let name = "deflate"
    public let pageSize: Int
    public let level: Int
    /// The window size in bits (positive).
    public let winbits: Int

    package static let levels = -1...9
    static let winbitsRange = 9...15
    /// The kernel's DEFLATE_DEF_WINBITS (a 2 KiB window) and DEFLATE_DEF_MEMLEVEL.
    static let defaultWinbits = 11
    static let memLevel: Int32 = 9

    public init(params: CodecParams = CodecParams(), pageSize: Int = 4096) throws(CodecError) {
        try Backend.checkPageSize(pageSize, "deflate")
        try Backend.rejectDictionary(params, "deflate")
        level = try Backend.level(params, "deflate", default: -1, range: Self.levels)
        let bits = params.deflateWinbits ?? Self.defaultWinbits
        guard Self.winbitsRange.contains(abs(bits)) else {
            throw .invalidParams("deflate: winbits \(bits) is outside ±\(Self.winbitsRange)")
        }
        winbits = abs(bits)
        self.pageSize = pageSize
    }

    public func makeStream() throws(CodecError) -> any CodecStream {
        try DeflateStream(pageSize: pageSize, level: Int32(level), winbits: Int32(winbits))
    }
}

/// One deflater and one inflater, initialised once and reset per page.
///
/// The `z_stream`s live on the heap because zlib keeps a pointer back to them.
final class DeflateStream: CodecStream {
    private let pageSize: Int
    private let deflater: UnsafeMutablePointer<z_stream>
    private let inflater: UnsafeMutablePointer<z_stream>

    init(pageSize: Int, level: Int32, winbits: Int32) throws(CodecError) {
        self.pageSize = pageSize
        deflater = .allocate(capacity: 1)
        deflater.initialize(to: z_stream())
        inflater = .allocate(capacity: 1)
        inflater.initialize(to: z_stream())
        let size = Int32(MemoryLayout<z_stream>.size)
        // Negative window bits select raw deflate: no zlib header or checksum.
        let d = deflateInit2_(deflater, level, Z_DEFLATED, -winbits, DeflateCodec.memLevel, Z_DEFAULT_STRATEGY, zlibVersion(), size)
        guard d == Z_OK else {
            let message = Self.message(deflater, d)
            deflater.deallocate()
            inflater.deallocate()
            throw .failed("deflate: deflateInit2 failed: \(message)")
        }
        let i = inflateInit2_(inflater, -winbits, zlibVersion(), size)
        guard i == Z_OK else {
            let message = Self.message(inflater, i)
            deflateEnd(deflater)
            deflater.deallocate()
            inflater.deallocate()
            throw .failed("deflate: inflateInit2 failed: \(message)")
        }
    }

    deinit {
        deflateEnd(deflater)
        inflateEnd(inflater)
        deflater.deallocate()
        inflater.deallocate()
    }

    private static func message(_ strm: UnsafeMutablePointer<z_stream>, _ code: Int32) -> String {
        if let msg = strm.pointee.msg { return String(cString: msg) }
        return String(cString: zError(code))
    }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        Backend.checkCompressBuffers(page, dst, pageSize)
        let r = deflateReset(deflater)
        guard r == Z_OK else { throw .failed("deflate: deflateReset: \(Self.message(deflater, r))") }
        deflater.pointee.next_in = UnsafeMutablePointer(mutating: page.baseAddress!.assumingMemoryBound(to: Bytef.self))
        deflater.pointee.avail_in = UInt32(pageSize)
        deflater.pointee.next_out = dst.baseAddress!.assumingMemoryBound(to: Bytef.self)
        deflater.pointee.avail_out = UInt32(pageSize - 1)
        let status = deflate(deflater, Z_FINISH)
        defer {
            deflater.pointee.next_in = nil
            deflater.pointee.next_out = nil
        }
        switch status {
        case Z_STREAM_END: return Int(deflater.pointee.total_out)
        case Z_OK, Z_BUF_ERROR: return nil  // ran out of room below one page
        default: throw .failed("deflate: \(Self.message(deflater, status))")
        }
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        let (s, p) = try Backend.checkDecompressBuffers(src, page, pageSize)
        guard src.count <= Int(UInt32.max) else { throw .corrupt("deflate: input of \(src.count) bytes is too long") }
        let r = inflateReset(inflater)
        guard r == Z_OK else { throw .failed("deflate: inflateReset: \(Self.message(inflater, r))") }
        inflater.pointee.next_in = UnsafeMutablePointer(mutating: s.assumingMemoryBound(to: Bytef.self))
        inflater.pointee.avail_in = UInt32(src.count)
        inflater.pointee.next_out = p.assumingMemoryBound(to: Bytef.self)
        inflater.pointee.avail_out = UInt32(pageSize)
        let status = inflate(inflater, Z_FINISH)
        defer {
            inflater.pointee.next_in = nil
            inflater.pointee.next_out = nil
        }
        switch status {
        case Z_STREAM_END:
            let produced = Int(inflater.pointee.total_out)
            if produced != pageSize { throw .corrupt("deflate: decoded \(produced) bytes, expected \(pageSize)") }
            if inflater.pointee.avail_in != 0 {
                throw .corrupt("deflate: \(inflater.pointee.avail_in) bytes after the end of the stream")
            }
        case Z_BUF_ERROR, Z_OK:
            if inflater.pointee.avail_out == 0 { throw .corrupt("deflate: decodes to more than \(pageSize) bytes") }
            throw .corrupt("deflate: truncated input")
        case Z_MEM_ERROR:
            throw .failed("deflate: \(Self.message(inflater, status))")
        default:  // Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
            throw .corrupt("deflate: \(Self.message(inflater, status))")
        }
    }
}
