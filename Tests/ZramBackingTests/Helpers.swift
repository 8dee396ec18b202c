import Foundation
import Testing
import ZramBacking
import ZramTestSupport

/// A fresh directory under the system temp dir, removed (immutable flags cleared first)
/// when the test drops it.
final class TempDir: Sendable {
    let path: String

    init(_ tag: String = #function) {
        let name = "zramd-backing-\(tag.filter(\.isLetter).prefix(24))-\(UInt32.random(in: 0...UInt32.max))"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        if let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for name in names { _ = setImmutable(file(name), false) }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// `chattr +i` / `chattr -i` through the FS_IOC_GETFLAGS/SETFLAGS ioctls (no subprocess).
/// False when the filesystem or the caller's capabilities do not allow it.
@discardableResult
func setImmutable(_ path: String, _ on: Bool) -> Bool {
    let getFlags: UInt = 0x8008_6601, setFlags: UInt = 0x4008_6602, immutable: Int32 = 0x10
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    // The kernel reads and writes an int here, whatever the ioctl's declared size says.
    var flags: Int32 = 0
    guard ioctl(fd, getFlags, &flags) == 0 else { return false }
    flags = on ? flags | immutable : flags & ~immutable
    return ioctl(fd, setFlags, &flags) == 0
}

/// Block `block` of `store` as bytes (its stored length).
func readBack(_ store: BackingStore, _ block: Int64) throws(BackingError) -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: store.pageSize)
    let result: Result<Int, BackingError> = buffer.withUnsafeMutableBytes { raw in
        do throws(BackingError) { return .success(try store.read(block: block, into: raw)) } catch {
            return .failure(error)
        }
    }
    let length = try result.get()
    return Array(buffer[0..<length])
}

/// `count` corpus pages starting at `first` (wrapping), concatenated.
func corpusPages(_ first: Int, _ count: Int) -> [UInt8] {
    let corpus = Corpus.shared
    var out: [UInt8] = []
    out.reserveCapacity(count * Corpus.pageSize)
    for i in 0..<count { out += corpus.page((first + i) % corpus.pageCount) }
    return out
}

/// Writes `pages` (contiguous, whole pages) as new blocks; returns block → page bytes.
func writeNew(_ store: BackingStore, _ pages: [UInt8]) throws(BackingError) -> [(Int64, [UInt8])] {
    let size = store.pageSize
    let result: Result<[Int64], BackingError> = pages.withUnsafeBytes { raw in
        do throws(BackingError) { return .success(try store.writeNew(pages: raw)) } catch { return .failure(error) }
    }
    let blocks = try result.get()
    return blocks.enumerated().map { i, block in (block, Array(pages[(i * size)..<((i + 1) * size)])) }
}

/// The error a throwing call produced, as a `BackingError` (nil if it did not throw).
func backingError(_ body: () throws -> Void) -> BackingError? {
    do { try body() } catch let error as BackingError { return error } catch {
        Issue.record("unexpected error type: \(error)")
    }
    return nil
}

/// A value behind an NSLock (pthread underneath, which ThreadSanitizer understands;
/// `Synchronization.Mutex` on Linux is a PI futex that TSan reports as racy when contended).
final class Shared<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
