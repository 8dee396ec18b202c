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
            for name in names { _ = shell("chattr", "-i", file(name)) }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Runs a tool, returns its exit status (-1 when it cannot start).
@discardableResult
func shell(_ tool: String, _ args: String...) -> Int32 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [tool] + args
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return -1 }
    process.waitUntilExit()
    return process.terminationStatus
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
