import Glibc

/// Decodes a `Transfer-Encoding: chunked` body in place (RFC 9112 7.1): each chunk's data is
/// moved down over the size lines before it, so the decoded body ends up contiguous where
/// the encoded one began. Called again as more of it arrives.
struct ChunkedBody {
    enum Progress: Equatable {
        /// The body is complete: this many decoded bytes.
        case complete(Int)
        /// More is to come; the body is at least this long (what the chunk sizes declared so far).
        case needMore(declared: Int)
        case malformed
    }

    private enum Phase { case size, data, dataEnd, trailer, done }
    private var phase = Phase.size
    /// Offsets from the body's start: the next encoded byte to read, the end of the decoded bytes.
    private var scan = 0
    private var written = 0
    private var chunkLeft = 0
    /// Bytes the encoded body (trailer included) took, once complete.
    private(set) var encodedCount: Int?

    /// A size line or trailer line longer than this is not one.
    private static let maxLine = 8 << 10

    mutating func decode(_ input: inout ByteBuffer, from start: Int) -> Progress {
        let base = input.base + start
        let available = input.count - start
        while true {
            switch phase {
            case .size:
                guard let lf = Self.find(base, from: scan, to: available) else {
                    return available - scan > Self.maxLine ? .malformed : .needMore(declared: written)
                }
                guard let size = Self.chunkSize(base, from: scan, to: lf) else { return .malformed }
                chunkLeft = size
                scan = lf + 1
                phase = size == 0 ? .trailer : .data
            case .data:
                let n = min(chunkLeft, available - scan)
                if n > 0 {
                    if written != scan { memmove(base + written, base + scan, n) }
                    written += n
                    scan += n
                    chunkLeft -= n
                }
                if chunkLeft > 0 { return .needMore(declared: written + chunkLeft) }
                phase = .dataEnd
            case .dataEnd:
                guard scan < available else { return .needMore(declared: written) }
                if base.load(fromByteOffset: scan, as: UInt8.self) == UInt8(ascii: "\r") {
                    guard scan + 1 < available else { return .needMore(declared: written) }
                    scan += 1
                }
                guard base.load(fromByteOffset: scan, as: UInt8.self) == UInt8(ascii: "\n") else { return .malformed }
                scan += 1
                phase = .size
            case .trailer:
                guard let lf = Self.find(base, from: scan, to: available) else {
                    return available - scan > Self.maxLine ? .malformed : .needMore(declared: written)
                }
                let empty = lf == scan || (lf == scan + 1 && base.load(fromByteOffset: scan, as: UInt8.self) == UInt8(ascii: "\r"))
                scan = lf + 1
                if empty {
                    phase = .done
                    encodedCount = scan
                }
            case .done:
                return .complete(written)
            }
        }
    }

    private static func find(_ base: UnsafeMutableRawPointer, from: Int, to: Int) -> Int? {
        guard from < to, let hit = memchr(base + from, Int32(UInt8(ascii: "\n")), to - from) else { return nil }
        return base.distance(to: hit)
    }

    /// The hex size at the start of a size line (extensions after `;` ignored); nil when
    /// there is none or it is absurdly long.
    private static func chunkSize(_ base: UnsafeMutableRawPointer, from: Int, to: Int) -> Int? {
        var size = 0
        var digits = 0
        var i = from
        while i < to, let value = QueryDecoding.hexValue(base.load(fromByteOffset: i, as: UInt8.self)) {
            size = size << 4 | Int(value)
            digits += 1
            i += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        while i < to, base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: " ") { i += 1 }
        let next = i < to ? base.load(fromByteOffset: i, as: UInt8.self) : UInt8(ascii: "\n")
        guard next == UInt8(ascii: ";") || next == UInt8(ascii: "\r") || next == UInt8(ascii: "\n") else { return nil }
        return size
    }
}
