import Glibc
import Testing
import ZramDevice
import ZramTestSupport

/// Issue 12: automatic writeback, writes at mem_limit, promotion and eviction (zramd
/// extensions, off by default).
@Suite struct TieringTests {
    @Test func offByDefaultAWriteAtTheLimitFailsAsInZram() throws {
        let f = try DeviceFixture(backing: "bd.sqlite")
        defer { f.remove() }
        #expect(try f.device.readAttribute("auto_writeback") == "enable=0 high_watermark=95 low_watermark=85\n")
        #expect(try f.device.readAttribute("promotion") == "enable=0 window=60\n")
        #expect(try f.device.readAttribute("eviction") == "enable=0\n")
        try f.device.writeAttribute("mem_limit", "256K")
        expectErrno(.ENOMEM) { for i in 0..<1000 { try f.put(i, corpusPage: i) } }
        #expect(f.device.bdStat.count == 0)
    }

    @Test func settingsGrammar() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        try f.device.writeAttribute("auto_writeback", "1")
        try f.device.writeAttribute("auto_writeback", "high_watermark=90 low_watermark=50\r\n")
        #expect(try f.device.readAttribute("auto_writeback") == "enable=1 high_watermark=90 low_watermark=50\n")
        for bad in [
            "colour=1", "high_watermark=50 low_watermark=50", "low_watermark=0", "high_watermark=101",
            "high_watermark=+90", "enable=2", "", "high_watermark",
        ] {
            expectErrno(.EINVAL) { try f.device.writeAttribute("auto_writeback", bad) }
        }
        #expect(try f.device.readAttribute("auto_writeback") == "enable=1 high_watermark=90 low_watermark=50\n", "refused writes change nothing")
        try f.device.writeAttribute("promotion", "enable=1 window=5")
        expectErrno(.EINVAL) { try f.device.writeAttribute("promotion", "window=0") }
        try f.device.writeAttribute("eviction", "enable=1")
        f.device.exportedAsBlockDevice.store(true, ordering: .relaxed)
        expectErrno(.EINVAL) { try f.device.writeAttribute("eviction", "1") }
        try f.device.writeAttribute("reset", "1")
        #expect(try f.device.readAttribute("auto_writeback") == "enable=0 high_watermark=95 low_watermark=85\n", "reset clears them")
        let withBacking = try DeviceFixture(backing: "bd.sqlite")
        defer { withBacking.remove() }
        expectErrno(.EINVAL) { try withBacking.device.writeAttribute("eviction", "1") }
    }

    @Test(arguments: [false, true])
    func writesNeverFailAndMemoryStaysUnderTheLimit(compressed: Bool) throws {
        let f = try DeviceFixture(disksize: "64M", backing: "bd.sqlite") { device in
            try device.writeAttribute("compressed_writeback", compressed ? "1" : "0")
        }
        defer { f.remove() }
        try f.device.writeAttribute("mem_limit", "1M")
        try f.device.writeAttribute("auto_writeback", "1")
        let count = 3000
        for i in 0..<count { try f.put(i, corpusPage: i * 3) }
        let mm = f.device.mmStat
        #expect(mm.memUsedMax <= (1 << 20) + 32 * 4096, "\(mm)")
        #expect(Stopwatch.eventually(10) { f.device.mmStat.memUsedTotal <= (1 << 20) * 85 / 100 + 8 * 4096 }, "\(f.device.mmStat)")
        let tier = f.device.tierStat
        #expect(tier.writesToBacking + tier.autoWrittenBack > 0, "\(tier)")
        #expect(f.device.ioStat.failedWrites == 0)
        for i in 0..<count { #expect(try f.get(i) == Corpus.shared.page(i * 3), "slot \(i)") }
        let stored = f.device.mmStat.origDataSize / 4096
        #expect(stored == count)
        #expect(f.device.bdStat.count == tier.writesToBacking + f.device.tierStat.autoWrittenBack, "bd_stat counts every page in the store")
    }

    @Test func theBudgetAndTheReasonIn507() throws {
        let f = try DeviceFixture(backing: "bd.sqlite")
        defer { f.remove() }
        try f.device.writeAttribute("mem_limit", "256K")
        try f.device.writeAttribute("writeback_limit_enable", "1")
        try f.device.writeAttribute("writeback_limit", "5")
        try f.device.writeAttribute("auto_writeback", "enable=1")
        var refusal: ZramError?
        for i in 0..<2000 {
            do { try f.put(i, corpusPage: i) } catch let error as ZramError {
                refusal = error
                break
            }
        }
        let error = try #require(refusal)
        #expect(error.errno == .ENOMEM && error.reason.contains("writeback budget"), "\(error)")
        #expect(f.device.bdStat.count <= 5)
    }

    @Test func autoWritebackPicksHugeThenColdAndSparesPagesReadSinceTheLastPass() throws {
        let f = try DeviceFixture(disksize: "64M", backing: "bd.sqlite")
        defer { f.remove() }
        for i in 0..<1500 { try f.put(i, corpusPage: 4000 + i) }
        // Read these: accessed since the last pass, they get a second chance.
        let hot = Array(stride(from: 0, to: 1500, by: 10))
        for i in hot { _ = try f.get(i) }
        let used = f.device.mmStat.memUsedTotal
        try f.device.writeAttribute("mem_limit", String(used * 100 / 96))
        try f.device.writeAttribute("auto_writeback", "enable=1 high_watermark=95 low_watermark=80")
        try f.put(1500, corpusPage: 5600)  // crosses the high watermark
        #expect(Stopwatch.eventually(10) { f.device.tierStat.autoWrittenBack > 0 })
        let states = try f.device.blockState().split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        let written = Set(states.filter { $0[2].contains("w") }.map { Int($0[0])! })
        #expect(!written.isEmpty)
        #expect(written.isDisjoint(with: hot), "pages read since the last pass stay in memory")
        let huge = Set((0..<1500).filter { !hot.contains($0) && (try? f.device.slotInfo($0))??.flags.contains("h") == true })
        #expect(huge.isSubset(of: written) || written.isSubset(of: huge), "huge pages go first")
        for i in 0..<1500 { #expect(try f.get(i) == Corpus.shared.page(4000 + i)) }
    }

    @Test func aWrittenBackPageReadTwiceWithinTheWindowComesBack() throws {
        let f = try DeviceFixture(backing: "bd.sqlite")
        defer { f.remove() }
        for i in 0..<10 { try f.put(i, corpusPage: 6000 + i) }
        try f.device.writeAttribute("writeback", "page_indexes=0-9")
        let back = f.device.bdStat.count
        #expect(back > 0)
        _ = try f.get(3)
        _ = try f.get(3)
        #expect(f.device.tierStat.promoted == 0, "promotion is off by default")
        try f.device.writeAttribute("promotion", "enable=1 window=60")
        _ = try f.get(4)
        #expect(try f.device.slotInfo(4)!.flags.contains("w"), "read once: stays")
        #expect(try f.get(4) == Corpus.shared.page(6004))
        #expect(f.device.tierStat.promoted == 1)
        #expect(try !f.device.slotInfo(4)!.flags.contains("w"), "read twice: back in memory")
        #expect(f.device.bdStat.count == back - 1, "its block is freed")
        #expect(try f.get(4) == Corpus.shared.page(6004))
    }

    @Test func evictionDropsTheColdestAndCountsThem() throws {
        let f = try DeviceFixture(disksize: "64M")
        defer { f.remove() }
        try f.device.writeAttribute("mem_limit", "1M")
        for i in 0..<100 { try f.put(i, corpusPage: 7000 + i) }
        expectErrno(.ENOMEM) { for i in 100..<2000 { try f.put(i, corpusPage: 7000 + i) } }
        try f.device.writeAttribute("eviction", "1")
        let failedBefore = f.device.ioStat.failedWrites
        for i in 0..<2000 { try f.put(i, corpusPage: 7000 + i) }
        #expect(f.device.tierStat.evicted > 0)
        #expect(f.device.ioStat.failedWrites == failedBefore, "no write failed with eviction on")
        #expect(f.device.mmStat.memUsedMax <= (1 << 20) + 32 * 4096)
        // Read some survivors: they were accessed since the last sweep, so they stay.
        let survivors = (0..<2000).filter { (try? f.device.slotInfo($0)) != nil }
        let kept = Array(survivors.prefix(20))
        // Access times are whole seconds: read them in a later second than the rest was
        // written, and write the next pages in a later one still.
        sleep(1)
        for i in kept { #expect(try f.get(i) == Corpus.shared.page(7000 + i)) }
        sleep(1)
        let evictedBefore = f.device.tierStat.evicted
        for i in 2000..<2100 { try f.put(i, corpusPage: 7000 + i) }
        #expect(f.device.tierStat.evicted > evictedBefore)
        var missing = 0
        for i in 0..<2100 {
            if let page = try f.get(i) { #expect(page == Corpus.shared.page(7000 + i)) } else { missing += 1 }
        }
        #expect(missing == f.device.tierStat.evicted, "every page is either there, exact, or counted as evicted")
        for i in kept { #expect(try f.device.slotInfo(i) != nil, "slot \(i) was read: it survives") }
    }
}
