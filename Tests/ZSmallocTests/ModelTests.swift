import Testing
import ZSmalloc
import ZramTestSupport

/// Random alloc / write / read / free against a reference model, compaction interleaved.
@Suite struct ModelTests {
    struct Live { var handle: Handle; var length: Int; var tag: Int }

    @Test(arguments: [(seed: UInt64(1), chain: 8), (seed: UInt64(2), chain: 4), (seed: UInt64(3), chain: 16)])
    func randomOperationsMatchTheModel(seed: UInt64, chain: Int) throws {
        let pool = ZsPool(pageSize: 4096, maxChain: chain)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        var rng = SplitMix64(seed: seed)
        var live: [Live] = []
        var mismatches = 0
        var compactedTotal = 0
        let operations = 400_000
        for op in 0..<operations {
            let roll = Int(rng.next() % 100)
            if live.isEmpty || roll < 40 {
                // Lengths skewed like compressed pages: mostly mid-sized, some tiny, some huge.
                let length = Int(rng.next() % 8 == 0 ? 1 + rng.next() % 4096 : 200 + rng.next() % 2800)
                let tag = Int(rng.next() % 1_000_000)
                live.append(Live(handle: try pool.store(length: length, tag: tag), length: length, tag: tag))
            } else if roll < 75 {
                let i = Int(rng.next() % UInt64(live.count))
                let item = live.swapAt(i, live.count - 1, pop: true)
                pool.free(item.handle)
            } else if roll < 90 {
                let item = live[Int(rng.next() % UInt64(live.count))]
                if !pool.holds(item.handle, length: item.length, tag: item.tag, scratch: scratch) { mismatches += 1 }
            } else {
                // Overwrite in place with other bytes of the same length.
                let i = Int(rng.next() % UInt64(live.count))
                live[i].tag = Int(rng.next() % 1_000_000)
                ObjectPattern.shared.withObject(length: live[i].length, tag: live[i].tag) { pool.write(live[i].handle, $0) }
            }
            if op % 50_000 == 49_999 {
                compactedTotal += pool.compact()
                for item in live where !pool.holds(item.handle, length: item.length, tag: item.tag, scratch: scratch) {
                    mismatches += 1
                }
                checkInvariants(pool, live: live)
            }
        }
        #expect(mismatches == 0)
        #expect(compactedTotal > 0)
        #expect(pool.pagesCompacted == compactedTotal)
        for item in live { pool.free(item.handle) }
        #expect(pool.chunksInUse == 0)
        #expect(pool.classStats().allSatisfy { $0.objectsUsed == 0 && $0.chunksUsed == 0 })
    }

    func checkInvariants(_ pool: ZsPool, live: [Live]) {
        let stats = pool.classStats()
        #expect(stats.reduce(0) { $0 + $1.objectsUsed } == live.count)
        #expect(stats.reduce(0) { $0 + $1.chunksUsed } == pool.chunksInUse)
        #expect(pool.memoryUsed == pool.chunksInUse * pool.pageSize)
        #expect(pool.memoryUsedMax >= pool.memoryUsed)
        for s in stats {
            #expect(s.objectsUsed <= s.objectsAllocated)
            #expect(s.fullness.reduce(0, +) * s.chunksPerZspage == s.chunksUsed)
        }
        let payload = live.reduce(0) { $0 + pool.classSize(for: $1.length) }
        #expect(payload <= pool.memoryUsed)
    }
}

extension Array {
    /// Swaps two elements, then optionally removes the last.
    mutating func swapAt(_ i: Int, _ j: Int, pop: Bool) -> Element {
        swapAt(i, j)
        return removeLast()
    }
}
