import ZSync
import Dispatch
import Synchronization
import Testing
import ZSmalloc
import Glibc
import ZramTestSupport

@Suite struct CompactionTests {
    @Test func compactionFreesSparseZspagesAndKeepsEveryHandle() throws {
        let pool = ZsPool()
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        var handles: [(Handle, Int)] = []
        for i in 0..<20_000 { handles.append((try pool.store(length: 700, tag: i), i)) }
        let full = pool.memoryUsed
        // Free three of every four objects: every zspage stays, a quarter used.
        var kept: [(Handle, Int)] = []
        for (n, item) in handles.enumerated() {
            if n % 4 == 0 { kept.append(item) } else { pool.free(item.0) }
        }
        #expect(pool.memoryUsed > full / 2)
        let freed = pool.compact()
        #expect(freed > 0)
        #expect(pool.pagesCompacted == freed)
        #expect(pool.memoryUsed <= full / 4 + 8 * 4096)
        for (h, tag) in kept { #expect(pool.holds(h, length: 700, tag: tag, scratch: scratch)) }
        #expect(pool.compact() == 0, "a second pass has nothing left to gain")
    }

    @Test func objectsThatStraddleChunksComeBackThroughScratch() throws {
        let pool = ZsPool()
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        var direct = 0, copied = 0
        for i in 0..<64 {
            let h = try pool.store(length: 1500, tag: i)
            let mapping = pool.readBegin(h, length: 1500, scratch: scratch)
            if mapping.bytes.baseAddress == UnsafeRawPointer(scratch.baseAddress) { copied += 1 } else { direct += 1 }
            #expect(ObjectPattern.shared.matches(mapping.bytes, tag: i))
            pool.readEnd(mapping)
        }
        #expect(direct > 0 && copied > 0)
    }

    @Test func compactionSkipsAZspageAReaderHoldsInsteadOfWaiting() throws {
        let pool = ZsPool()
        var handles: [Handle] = []
        for i in 0..<4000 { handles.append(try pool.store(length: 500, tag: i)) }
        for (n, h) in handles.enumerated() where n % 2 == 1 { pool.free(h) }
        let held = handles[0]
        let reading = DispatchSemaphore(value: 0)
        let compactDone = Atomic<Bool>(false)
        let readerSawCompactFinish = Atomic<Bool>(false)
        let reader = DispatchSemaphore(value: 0)
        PThread.detach {
            let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
            pool.withObject(held, length: 500, scratch: scratch) { _ in
                reading.signal()
                // Hold the read lock until compaction finishes, or give up after 10 s.
                for _ in 0..<1000 where !compactDone.load(ordering: .acquiring) { usleep(10_000) }
                readerSawCompactFinish.store(compactDone.load(ordering: .acquiring), ordering: .releasing)
            }
            scratch.deallocate()
            reader.signal()
        }
        reading.wait()
        let freed = pool.compact()
        compactDone.store(true, ordering: .releasing)
        reader.wait()
        let compactionFinishedFirst = readerSawCompactFinish.load(ordering: .acquiring)
        #expect(compactionFinishedFirst, "compaction waited for a reader")
        #expect(freed > 0)
    }
}
