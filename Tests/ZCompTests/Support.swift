import Foundation
import Testing
import ZComp
import ZramTestSupport

let pageSize = Corpus.pageSize
var corpus: Corpus { Corpus.shared }

/// A heap buffer of `usable` bytes followed by canary bytes that no codec may touch.
final class GuardedBuffer {
    static let canaryCount = 64
    static let canary: UInt8 = 0xA5
    let usable: Int
    let whole: UnsafeMutableRawBufferPointer

    init(usable: Int) {
        self.usable = usable
        whole = .allocate(byteCount: usable + Self.canaryCount, alignment: 16)
        whole.initializeMemory(as: UInt8.self, repeating: Self.canary)
    }

    deinit { whole.deallocate() }

    /// Re-arms the canaries from `offset` to the end.
    func arm(from offset: Int) {
        UnsafeMutableRawBufferPointer(rebasing: whole[offset...]).initializeMemory(as: UInt8.self, repeating: Self.canary)
    }

    /// Whether every byte from `offset` to the end still holds the canary.
    func intact(from offset: Int) -> Bool { whole[offset...].allSatisfy { $0 == Self.canary } }

    var usableBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: whole[..<usable]) }

    func bytes(_ count: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: whole[..<count]) }
}

/// Compresses page `index` with `stream` into a fresh array (nil when it does not fit).
func compressed(_ stream: any CodecStream, page index: Int) throws -> [UInt8]? {
    let dst = GuardedBuffer(usable: pageSize)
    let n = try corpus.withPage(index) { page in try stream.compress(page, into: dst.whole) }
    #expect(dst.intact(from: pageSize - 1), "compress wrote at or past pageSize - 1")
    return n.map { Array(dst.bytes($0)) }
}

/// Compresses `bytes` (one page) with `stream` into a fresh array (nil when it does not fit).
func compressed(_ stream: any CodecStream, bytes: [UInt8]) throws -> [UInt8]? {
    let dst = GuardedBuffer(usable: pageSize)
    let n = try bytes.withUnsafeBytes { page in try stream.compress(page, into: dst.whole) }
    #expect(dst.intact(from: pageSize - 1), "compress wrote at or past pageSize - 1")
    return n.map { Array(dst.bytes($0)) }
}

/// A page of random bytes.
func randomPage<G: RandomNumberGenerator>(_ rng: inout G) -> [UInt8] {
    (0..<pageSize).map { _ in UInt8.random(in: 0...255, using: &rng) }
}

/// Runs `body(i)` for i in 0..<count, each on its own thread, and waits for all.
func runThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        let thread = Thread {
            body(i)
            group.leave()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
    group.wait()
}

/// The case name of a codec error, for asserting on the kind and not the message.
extension CodecError {
    var kind: String {
        switch self {
        case .unknownAlgorithm: "unknownAlgorithm"
        case .corrupt: "corrupt"
        case .invalidParams: "invalidParams"
        case .failed: "failed"
        }
    }
}
