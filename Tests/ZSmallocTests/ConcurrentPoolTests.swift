import ZSync
import Dispatch
import Synchronization
import Testing
import ZSmalloc
import ZramTestSupport

/// Writers, readers and a compactor at once; run again under ThreadSanitizer by `make test`.
@Suite struct ConcurrentPoolTests {
    @Test func writersReadersAndCompactorAgree() throws {
        let pool = ZsPool()
        // Objects the readers check over and over while compaction moves them.
        var shared: [(Handle, Int, Int)] = []
        for i in 0..<3000 {
            let length = 100 + (i * 37) % 3000
            shared.append((try pool.store(length: length, tag: i), length, i))
        }
        let sharedItems = shared
        let mismatches = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        let writers = 3, readers = 2

        for w in 0..<writers {
            PThread.detach {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                var rng = SplitMix64(seed: UInt64(w + 10))
                var own: [(Handle, Int, Int)] = []
                for _ in 0..<30_000 {
                    if own.isEmpty || rng.next() % 3 != 0 {
                        let length = 1 + Int(rng.next() % 4096)
                        let tag = Int(rng.next() % 100_000)
                        guard let h = try? pool.store(length: length, tag: tag) else { continue }
                        own.append((h, length, tag))
                    } else {
                        let item = own.swapAt(Int(rng.next() % UInt64(own.count)), own.count - 1, pop: true)
                        if !pool.holds(item.0, length: item.1, tag: item.2, scratch: scratch) {
                            mismatches.add(1, ordering: .relaxed)
                        }
                        pool.free(item.0)
                    }
                }
                for item in own { pool.free(item.0) }
                scratch.deallocate()
                done.signal()
            }
        }
        for r in 0..<readers {
            PThread.detach {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                var rng = SplitMix64(seed: UInt64(r + 100))
                while !stop.load(ordering: .relaxed) {
                    let (h, length, tag) = sharedItems[Int(rng.next() % UInt64(sharedItems.count))]
                    if !pool.holds(h, length: length, tag: tag, scratch: scratch) { mismatches.add(1, ordering: .relaxed) }
                }
                scratch.deallocate()
                done.signal()
            }
        }
        let compactions = Atomic<Int>(0)
        PThread.detach {
            while !stop.load(ordering: .relaxed) {
                pool.compact()
                compactions.add(1, ordering: .relaxed)
            }
            done.signal()
        }
        for _ in 0..<writers { done.wait() }
        stop.store(true, ordering: .relaxed)
        for _ in 0..<(readers + 1) { done.wait() }

        #expect(mismatches.load(ordering: .relaxed) == 0)
        #expect(compactions.load(ordering: .relaxed) > 0)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        for (h, length, tag) in sharedItems { #expect(pool.holds(h, length: length, tag: tag, scratch: scratch)) }
        for (h, _, _) in sharedItems { pool.free(h) }
        #expect(pool.chunksInUse == 0)
    }
}
