/// Checks shared by every backend (kept out of the per-backend files).
enum Backend {
    /// The page sizes a codec accepts: 16 bytes to 1 MiB, which keeps every length in a C `int`.
    static let pageSizes = 16...(1 << 20)

    static func checkPageSize(_ pageSize: Int, _ name: String) throws(CodecError) {
        guard pageSizes.contains(pageSize) else {
            throw .invalidParams("\(name): page size \(pageSize) is outside \(pageSizes)")
        }
    }

    /// The level to use: `params.level` if it lies in `range`, else `defaultLevel` when nil.
    static func level(
        _ params: CodecParams, _ name: String, default defaultLevel: Int, range: ClosedRange<Int>
    ) throws(CodecError) -> Int {
        guard let level = params.level else { return defaultLevel }
        guard range.contains(level) else {
            throw .invalidParams("\(name): level \(level) is outside \(range)")
        }
        return level
    }

    static func rejectLevel(_ params: CodecParams, _ name: String) throws(CodecError) {
        if params.level != nil { throw .invalidParams("\(name) has no compression level") }
    }

    static func rejectDictionary(_ params: CodecParams, _ name: String) throws(CodecError) {
        if params.dictionary != nil { throw .invalidParams("\(name) does not take a dictionary") }
    }

    static func rejectWinbits(_ params: CodecParams, _ name: String) throws(CodecError) {
        if params.deflateWinbits != nil { throw .invalidParams("\(name) has no window bits (deflate only)") }
    }

    /// Caller-side contract of `CodecStream.compress`: programming errors, not data errors.
    @inline(__always)
    static func checkCompressBuffers(
        _ page: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer, _ pageSize: Int
    ) {
        precondition(page.count == pageSize, "compress: the page must be exactly \(pageSize) bytes")
        precondition(dst.count >= pageSize - 1, "compress: the destination must hold \(pageSize - 1) bytes")
    }

    /// Caller-side contract of `CodecStream.decompress`; returns the page start,
    /// or throws `.corrupt` for empty input (nothing a backend ever produces).
    @inline(__always)
    static func checkDecompressBuffers(
        _ src: UnsafeRawBufferPointer, _ page: UnsafeMutableRawBufferPointer, _ pageSize: Int
    ) throws(CodecError) -> (src: UnsafeRawPointer, page: UnsafeMutableRawPointer) {
        precondition(page.count >= pageSize, "decompress: the destination must hold \(pageSize) bytes")
        guard let s = src.baseAddress, !src.isEmpty else { throw .corrupt("empty input") }
        return (s, page.baseAddress!)
    }
}
