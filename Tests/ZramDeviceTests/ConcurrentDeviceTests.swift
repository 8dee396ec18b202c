import ZSync
import Dispatch
import Synchronization
import Testing
import ZramDevice
import ZramTestSupport

/// Threads writing, reading and discarding their own slots against a reference model while
/// idle marking, recompression, writeback and compaction run over every slot.
/// `make test` runs this again under ThreadSanitizer.
@Suite struct ConcurrentDeviceTests {
    @Test func pageOperationsAndPostProcessingAgreeWithTheModel() throws {
        let f = try DeviceFixture(disksize: "4M", secondary: ["zstd"], backing: "wb.sqlite")
        defer { f.remove() }
        try f.device.writeAttribute("writeback_batch_size", "16")
        let slots = f.device.slotCount
        let workers = 3
        let mismatches = Atomic<Int>(0)
        let errors = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        let done = DispatchSemaphore(value: 0)
        final class Model: @unchecked Sendable { var pages: [Int?] = [] }
        let models = (0..<workers).map { _ in Model() }

        for w in 0..<workers {
            PThread.detach {
                var rng = SplitMix64(seed: UInt64(100 + w))
                var model = [Int?](repeating: nil, count: slots)
                var page = [UInt8](repeating: 0, count: 4096)
                for _ in 0..<6000 {
                    let slot = Int(rng.next() % UInt64(slots / workers)) * workers + w
                    do {
                        switch rng.next() % 10 {
                        case 0..<5:
                            let p = Int(rng.next() % UInt64(Corpus.shared.pageCount))
                            try Corpus.shared.withPage(p) { try f.device.write(slot, $0) }
                            model[slot] = p
                        case 5..<9:
                            let found = try page.withUnsafeMutableBytes { try f.device.read(slot, into: $0) }
                            let expected = model[slot].map { Corpus.shared.page($0) }
                            if found ? expected != page : expected != nil { mismatches.add(1, ordering: .relaxed) }
                        default:
                            try f.device.discard(slot)
                            model[slot] = nil
                        }
                    } catch {
                        errors.add(1, ordering: .relaxed)
                    }
                }
                models[w].pages = model
                done.signal()
            }
        }
        let rounds = Atomic<Int>(0)
        PThread.detach {
            while !stop.load(ordering: .relaxed) {
                do {
                    try f.device.writeAttribute("idle", "all")
                    try f.device.writeAttribute("recompress", "type=idle max_pages=64")
                    try f.device.writeAttribute("writeback", "idle")
                    try f.device.writeAttribute("compact", "1")
                    _ = try f.device.blockState()
                    _ = try f.device.readAttribute("mm_stat")
                } catch {
                    errors.add(1, ordering: .relaxed)
                }
                rounds.add(1, ordering: .relaxed)
            }
            done.signal()
        }
        for _ in 0..<workers { done.wait() }
        stop.store(true, ordering: .relaxed)
        done.wait()

        #expect(mismatches.load(ordering: .relaxed) == 0)
        #expect(errors.load(ordering: .relaxed) == 0)
        #expect(rounds.load(ordering: .relaxed) > 0)
        #expect(f.device.bdStat.writes > 0, "writeback ran during the workload")
        var stored = 0
        for slot in 0..<slots {
            let expected = models[slot % workers].pages[slot]
            #expect(try f.get(slot) == expected.map { Corpus.shared.page($0) })
            if expected != nil { stored += 1 }
        }
        let mm = f.device.mmStat
        #expect(mm.origDataSize == stored * 4096)
        #expect(mm.comprDataSize <= mm.memUsedTotal && mm.memUsedTotal <= mm.memUsedMax)
    }
}
