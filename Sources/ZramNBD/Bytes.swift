/// Big-endian encoding of handshake messages (cold path: plain arrays are fine here).
struct MessageWriter {
    private(set) var bytes: [UInt8] = []

    mutating func u16(_ v: UInt16) { for s in stride(from: 8, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> s)) } }
    mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> s)) } }
    mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> s)) } }
    mutating func append(_ data: some Sequence<UInt8>) { bytes.append(contentsOf: data) }
}

/// Big-endian decoding of an option's data; every read is bounds-checked and fails softly.
struct MessageReader {
    let bytes: [UInt8]
    private(set) var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - position }

    mutating func u16() -> UInt16? {
        guard remaining >= 2 else { return nil }
        defer { position += 2 }
        return UInt16(bytes[position]) << 8 | UInt16(bytes[position + 1])
    }

    mutating func u32() -> UInt32? {
        guard let hi = u16(), let lo = u16() else { return nil }
        return UInt32(hi) << 16 | UInt32(lo)
    }

    mutating func take(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always) func storeBE(_ v: UInt16, at offset: Int) { storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self) }
    @inline(__always) func storeBE(_ v: UInt32, at offset: Int) { storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self) }
    @inline(__always) func storeBE(_ v: UInt64, at offset: Int) { storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self) }
}

extension UnsafeRawPointer {
    @inline(__always) func loadBE16(at offset: Int) -> UInt16 { UInt16(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    @inline(__always) func loadBE32(at offset: Int) -> UInt32 { UInt32(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    @inline(__always) func loadBE64(at offset: Int) -> UInt64 { UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
}

/// A heap buffer that one reply (or one write payload) owns, freed with it.
final class IOBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int

    init(count: Int) {
        self.count = count
        base = .allocate(byteCount: max(count, 1), alignment: 16)
    }

    deinit { base.deallocate() }

    /// `length` bytes from `offset`.
    func slice(_ offset: Int, _ length: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: base + offset, count: length)
    }
}
