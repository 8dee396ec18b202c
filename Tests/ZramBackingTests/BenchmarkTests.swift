import Foundation
import Testing
import ZramBacking
import ZramTestSupport

/// Throughput numbers, not pass/fail: runs only with ZRAMD_BENCH=1, best in release:
/// `ZRAMD_BENCH=1 swift test -c release --scratch-path .build-backing-rel --filter BackingBenchmark`
@Suite("BackingBenchmark", .enabled(if: ProcessInfo.processInfo.environment["ZRAMD_BENCH"] != nil))
struct BackingBenchmarkTests {
    @Test("writeback pages/s: store write path vs raw batched SQLite inserts")
    func writes() throws {
        let dir = TempDir()
        let count = Int(ProcessInfo.processInfo.environment["ZRAMD_BENCH_PAGES"] ?? "") ?? 20_000
        try Corpus.shared.bytes.withUnsafeBytes { source in
            for sync in ["OFF", "NORMAL"] {
                for batch in [1, 32, 256] {
                    let raw = try BackingBenchmark.rawInserts(
                        path: dir.file("raw.db"), source: source, pageSize: 4096, count: count, batchSize: batch,
                        synchronous: sync)
                    let store = try BackingBenchmark.storeWrites(
                        path: dir.file("store.db"), source: source, pageSize: 4096, count: count, batchSize: batch,
                        synchronous: sync)
                    print("synchronous=\(sync) \(raw) | \(store) | store/raw \(Int((store.pagesPerSecond / raw.pagesPerSecond * 100).rounded()))%")
                }
            }
            print(try BackingBenchmark.storeReads(path: dir.file("read.db"), source: source, pageSize: 4096, count: count))
        }
    }
}
