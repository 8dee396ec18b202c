import ZSmalloc
import ZramTestSupport

/// Deterministic object contents: an object of `length` bytes with tag `tag` is a window
/// of a fixed random buffer, so a test needs to remember only (length, tag) per handle.
struct ObjectPattern: Sendable {
    static let shared = ObjectPattern()
    let bytes: [UInt8]

    init() {
        var rng = SplitMix64(seed: 0x5eed)
        bytes = (0..<(1 << 17)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }

    func withObject<R>(length: Int, tag: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = tag % (bytes.count - length)
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
    }

    func matches(_ candidate: UnsafeRawBufferPointer, tag: Int) -> Bool {
        withObject(length: candidate.count, tag: tag) { $0.elementsEqual(candidate) }
    }
}

extension ZsPool {
    /// Allocates an object and fills it with the pattern for `tag`.
    func store(length: Int, tag: Int) throws -> Handle {
        let handle = try malloc(length)
        ObjectPattern.shared.withObject(length: length, tag: tag) { write(handle, $0) }
        return handle
    }

    /// True when the object reads back as the pattern for `tag`.
    func holds(_ handle: Handle, length: Int, tag: Int, scratch: UnsafeMutableRawBufferPointer) -> Bool {
        withObject(handle, length: length, scratch: scratch) { ObjectPattern.shared.matches($0, tag: tag) }
    }
}
