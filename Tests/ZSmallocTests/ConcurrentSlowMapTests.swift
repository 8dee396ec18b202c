import ZSync
import Dispatch
import Glibc
import Synchronization
import Testing
import ZSmalloc
import ZramTestSupport

/// Issue 10 item 7: mapping and populating a new region (milliseconds for 2 MiB, far more
/// with 64 KiB pages) ran under the size class's lock and the arena's lock, so a free or an
/// allocation in the same class waited for it.
@Suite struct ConcurrentSlowMapTests {
    @Test func aSlowMapHoldsNoLockOthersNeed() throws {
        let slow = Atomic<Bool>(false)
        let mapping = DispatchSemaphore(value: 0)
        let pool = ZsPool(
            pageSize: 4096, maxChain: 8,
            mapRegion: { bytes in
                if slow.load(ordering: .relaxed) {
                    mapping.signal()
                    usleep(50_000)
                }
                let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                return region == MAP_FAILED ? nil : region
            })
        // Whole-page objects take one chunk each: 512 of them use up the first 2 MiB region.
        var live: [(handle: Handle, tag: Int)] = []
        for i in 0..<512 { live.append((try pool.store(length: 4096, tag: i), i)) }
        slow.store(true, ordering: .relaxed)
        let finished = DispatchSemaphore(value: 0)
        let late = Atomic<UInt32>(0)
        PThread.detach {
            // Needs a new region: maps slowly.
            late.store((try? pool.store(length: 4096, tag: 9999))?.raw ?? 0, ordering: .relaxed)
            finished.signal()
        }
        mapping.wait()
        // Same class (class lock), an emptied zspage going back to the arena (arena lock),
        // then an allocation served by the chunk that free just returned.
        // Free and allocate in the same class, again and again while the region is mapped:
        // the class lock and the arena lock (the freed chunk goes back and is taken again).
        var times: [Double] = []
        for k in 0..<10 {
            let gone = live.removeFirst()
            times.append(Stopwatch.milliseconds { pool.free(gone.handle) })
            times.append(try Stopwatch.milliseconds { live.append((try pool.store(length: 4096, tag: 1000 + k), 1000 + k)) })
        }
        let stillMapping = finished.wait(timeout: .now()) == .timedOut
        finished.wait()
        times.sort()
        #expect(stillMapping, "the calls overlapped the slow map")
        #expect(times[times.count / 2] < 5 && times.last! < 40, "free/malloc waited for a region being mapped: \(times) ms")
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { scratch.deallocate() }
        #expect(late.load(ordering: .relaxed) != 0)
        #expect(pool.holds(Handle(raw: late.load(ordering: .relaxed)), length: 4096, tag: 9999, scratch: scratch))
        for item in live { #expect(pool.holds(item.handle, length: 4096, tag: item.tag, scratch: scratch)) }
    }

    @Test func aFailedMapLosesNothing() throws {
        let fail = Atomic<Bool>(false)
        let pool = ZsPool(
            pageSize: 4096, maxChain: 8,
            mapRegion: { bytes in
                if fail.load(ordering: .relaxed) { return nil }
                let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                return region == MAP_FAILED ? nil : region
            })
        var handles: [Handle] = []
        for i in 0..<512 { handles.append(try pool.store(length: 4096, tag: i)) }
        fail.store(true, ordering: .relaxed)
        #expect(throws: ZsError.self) { try pool.store(length: 4096, tag: 0) }
        pool.free(handles.removeLast())
        _ = try pool.store(length: 4096, tag: 511)  // a freed chunk is reused without mapping
        fail.store(false, ordering: .relaxed)
        _ = try pool.store(length: 4096, tag: 512)
    }
}
