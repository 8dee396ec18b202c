import Glibc

/// A growable `malloc`ed byte buffer: a connection's input, and the response heads it writes.
///
/// Not copyable: exactly one owner frees it.
struct ByteBuffer: ~Copyable {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes in use, from `base`.
    var count = 0

    init(capacity: Int) {
        self.capacity = max(16, capacity)
        base = malloc(self.capacity)!
    }

    deinit { free(base) }

    /// The unused space after `count`.
    var spare: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base + count, count: capacity - count) }

    /// Makes room for at least `capacity` bytes in all, keeping the contents.
    mutating func reserve(_ capacity: Int) {
        guard capacity > self.capacity else { return }
        base = realloc(base, capacity)!
        self.capacity = capacity
    }

    /// Gives back memory above `capacity` (the contents must fit).
    mutating func shrink(to capacity: Int) {
        precondition(count <= capacity)
        guard self.capacity > capacity else { return }
        base = realloc(base, capacity)!
        self.capacity = capacity
    }

    /// Drops the first `bytes` bytes, moving the rest to the start.
    mutating func removeFirst(_ bytes: Int) {
        precondition(bytes <= count)
        if bytes < count { memmove(base, base + bytes, count - bytes) }
        count -= bytes
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        if count + bytes.count > capacity { reserve(max(count + bytes.count, capacity * 2)) }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count += bytes.count
    }

    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `value` in decimal.
    mutating func append(decimal value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { scratch in
            var n = UInt(max(0, value))
            var i = scratch.count
            repeat {
                i -= 1
                scratch[i] = UInt8(ascii: "0") + UInt8(n % 10)
                n /= 10
            } while n > 0
            append(UnsafeRawBufferPointer(rebasing: scratch[i...]))
        }
    }
}
