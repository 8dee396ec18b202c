import ZSync
import Dispatch
import Foundation
import Synchronization
import Testing
import ZramBacking
import ZramTestSupport

/// Runs `body(i)` on `count` threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let group = DispatchGroup()
    for i in 0..<count {
        group.enter()
        Thread.detachNewThread {
            body(i)
            group.leave()
        }
    }
    group.wait()
}

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

@Suite("Concurrent backing store", .serialized)
struct ConcurrentBackingStoreTests {
    @Test("readers verify pages while a writer commits, frees and reuses blocks")
    func readersDuringWrites() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("c.db"), pageSize: 4096, readers: 3)
        let stable = try writeNew(store, corpusPages(0, 256))
        let stop = Atomic<Bool>(false)
        let reads = Atomic<Int>(0)
        let wrong = Atomic<Int>(0)
        let failures = Shared<[String]>([])
        let writerBatches = 40
        let freed = Atomic<Int64>(0)

        onThreads(5) { t in
            if t == 0 {
                // The writer: batches of 32, each checked, then half freed (reused by later batches).
                defer { stop.store(true, ordering: .releasing) }
                for b in 0..<writerBatches {
                    do {
                        let batch = try writeNew(store, corpusPages(1000 + b * 32, 32))
                        for (block, page) in batch.prefix(4) where try readBack(store, block) != page {
                            wrong.add(1, ordering: .relaxed)
                        }
                        for (block, _) in batch where block % 2 == 0 {
                            try store.free(block)
                            freed.add(1, ordering: .relaxed)
                        }
                    } catch {
                        failures.withLock { $0.append("writer: \(error)") }
                    }
                }
            } else {
                var rng = SplitMix64(seed: UInt64(t))
                while !stop.load(ordering: .acquiring) {
                    let (block, page) = stable[Int.random(in: 0..<stable.count, using: &rng)]
                    do {
                        if try readBack(store, block) != page { wrong.add(1, ordering: .relaxed) }
                        reads.add(1, ordering: .relaxed)
                    } catch {
                        failures.withLock { $0.append("reader: \(error)") }
                    }
                }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(reads.load(ordering: .relaxed) > 0)
        #expect(store.stats.blocksInUse == 256 + Int64(writerBatches * 32) - freed.load(ordering: .relaxed))
        #expect(store.stats.bdWrites == 256 + Int64(writerBatches * 32))
    }

    @Test("a read is not held up by a long (2000-page) write transaction")
    func readDuringLongTransaction() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("l.db"), pageSize: 4096)
        let stable = try writeNew(store, corpusPages(0, 64))
        let big = corpusPages(5000, 2000)
        // A read that waited for the writer would end only after the commit, so every read that
        // began in the first three quarters of the transaction must end before it does. That only
        // proves something if such reads happened: on a loaded 2-core machine the reader may not
        // be scheduled at all, so up to three transactions are tried until one overlaps enough.
        var overlapped = false
        for _ in 0..<3 where !overlapped {
            let (start, end, reads) = try transactionWithReader(store, stable, big)
            let early = reads.filter { $0.0 >= start && $0.0 < start + (end - start) * 3 / 4 }
            let latencies = early.map { $0.1 - $0.0 }.sorted()
            print(
                "2000-page batch: \((end - start) / 1_000_000) ms; \(early.count) reads began in its first 3/4, "
                    + "p90 \(latencies.isEmpty ? 0 : latencies[latencies.count * 9 / 10] / 1000) µs")
            #expect(early.allSatisfy { $0.1 < end }, "a read that began during the transaction waited for its commit")
            overlapped = early.count >= 5
        }
        #expect(overlapped, "in three tries the reader never ran during a write transaction")
    }

    /// Runs one 2000-page `writeNew` while another thread reads `stable` blocks in a loop.
    /// - Returns: the transaction's start and end, and (start, end) of every read.
    func transactionWithReader(
        _ store: BackingStore, _ stable: [(Int64, [UInt8])], _ big: [UInt8]
    ) throws -> (UInt64, UInt64, [(UInt64, UInt64)]) {
        let writeStart = Atomic<UInt64>(0)
        let writeEnd = Atomic<UInt64>(0)
        let readTimes = Shared<[(UInt64, UInt64)]>([])
        let problems = Shared<[String]>([])
        let written = Shared<[Int64]>([])
        onThreads(2) { t in
            if t == 0 {
                Thread.sleep(forTimeInterval: 0.02)  // let the reader get going
                writeStart.store(now(), ordering: .releasing)
                do {
                    let blocks = try writeNew(store, big)
                    written.withLock { $0 = blocks.map(\.0) }
                } catch {
                    problems.withLock { $0.append("writer: \(error)") }
                }
                writeEnd.store(now(), ordering: .releasing)
            } else {
                var i = 0
                var times: [(UInt64, UInt64)] = []
                while writeEnd.load(ordering: .acquiring) == 0 {
                    let (block, page) = stable[i % stable.count]
                    let t0 = now()
                    do {
                        if try readBack(store, block) != page { problems.withLock { $0.append("wrong bytes") } }
                    } catch { problems.withLock { $0.append("reader: \(error)") } }
                    times.append((t0, now()))
                    i += 1
                }
                readTimes.withLock { $0 = times }
            }
        }
        #expect(problems.withLock { $0 } == [])
        // Free the batch so a retry starts from the same state.
        for block in written.withLock({ $0 }) { try store.free(block) }
        return (writeStart.load(ordering: .acquiring), writeEnd.load(ordering: .acquiring), readTimes.withLock { $0 })
    }

    @Test("concurrent reads from many threads all verify")
    func manyReaders() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("m.db"), pageSize: 4096, readers: 4)
        let written = try writeNew(store, corpusPages(200, 128))
        let wrong = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        onThreads(6) { t in
            for k in 0..<300 {
                let (block, page) = written[(k * 7 + t * 13) % written.count]
                do { if try readBack(store, block) != page { wrong.add(1, ordering: .relaxed) } } catch {
                    errors.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(wrong.load(ordering: .relaxed) == 0)
        #expect(errors.load(ordering: .relaxed) == 0)
        #expect(store.stats.bdReads == 6 * 300)
    }

    @Test("allocate/free from many threads keeps the books straight")
    func allocatorContention() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("a.db"), pageSize: 4096, capacityBlocks: 64)
        let noSpace = Atomic<Int>(0)
        let held = Shared<Set<Int64>>([])
        let duplicates = Atomic<Int>(0)
        onThreads(4) { t in
            var rng = SplitMix64(seed: 100 + UInt64(t))
            var mine: [Int64] = []
            for _ in 0..<500 {
                if mine.isEmpty || Bool.random(using: &rng) {
                    do {
                        let got = try store.allocate(Int.random(in: 1...4, using: &rng))
                        held.withLock { set in for b in got where !set.insert(b).inserted { duplicates.add(1, ordering: .relaxed) } }
                        mine += got
                    } catch { noSpace.add(1, ordering: .relaxed) }
                } else {
                    let b = mine.removeLast()
                    _ = held.withLock { $0.remove(b) }
                    try? store.free(b)
                }
            }
            for b in mine {
                _ = held.withLock { $0.remove(b) }
                try? store.free(b)
            }
        }
        #expect(duplicates.load(ordering: .relaxed) == 0)
        #expect(store.stats.blocksInUse == 0)
        #expect(store.stats.bdCount == 0)
        #expect(try store.allocate(64) == Array(1...64))
    }
}
