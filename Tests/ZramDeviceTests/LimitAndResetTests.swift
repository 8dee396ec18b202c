import Testing
import ZramDevice
import ZramTestSupport

@Suite struct LimitAndResetTests {
    @Test func memLimitFailsWritesAndLosesNothingStored() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        try f.device.writeAttribute("mem_limit", "256K")
        var stored: [Int] = []
        var refused = 0
        for i in 0..<1000 {
            do {
                try f.put(i, corpusPage: i)
                stored.append(i)
            } catch let error as ZramError {
                #expect(error.errno == .ENOMEM)
                refused += 1
            }
        }
        #expect(refused > 0 && !stored.isEmpty)
        #expect(f.device.ioStat.failedWrites == refused)
        #expect(f.device.mmStat.memUsedTotal <= 256 * 1024 + 8 * 4096)
        for i in stored { #expect(try f.get(i) == Corpus.shared.page(i)) }
        // An overwrite that does not fit keeps the old page.
        let victim = stored.last!
        #expect(throws: ZramError.self) { try f.put(victim, corpusPage: 9000) }
        #expect(try f.get(victim) == Corpus.shared.page(victim))
        try f.device.writeAttribute("mem_limit", "0")
        try f.put(999, corpusPage: 999)
    }

    @Test func memUsedMaxKeepsThePeakUntilReset() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        for i in 0..<500 { try f.put(i, corpusPage: i) }
        for i in 0..<500 { try f.device.discard(i) }
        let mm = f.device.mmStat
        #expect(mm.memUsedTotal == 0 && mm.memUsedMax > 0)
        try f.device.writeAttribute("mem_used_max", "0")
        #expect(f.device.mmStat.memUsedMax == 0)
    }

    @Test func resetFreesEverythingAndForgetsTheConfiguration() throws {
        let f = try DeviceFixture(algorithm: "zstd", secondary: ["deflate"], backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: i) }
        try f.device.writeAttribute("writeback", "page_indexes=0-99")
        try f.device.writeAttribute("mem_limit", "64M")
        try f.device.writeAttribute("reset", "1")
        #expect(try f.device.readAttribute("mm_stat") == "       0        0        0        0        0        0        0        0        0\n")
        #expect(try f.device.readAttribute("bd_stat") == "       0        0        0\n")
        #expect(try f.device.readAttribute("comp_algorithm") == "lzo [lz4] lz4hc zstd deflate\n")
        #expect(try f.device.readAttribute("recomp_algorithm") == "")
        #expect(try f.device.readAttribute("backing_dev") == "none\n")
        try f.device.writeAttribute("disksize", "1M")
        #expect(try f.get(0) == nil)
    }

    @Test func registryAddsAndRemovesDevices() throws {
        let registry = DeviceRegistry(dataDir: "/tmp")
        let a = registry.hotAdd(), b = registry.hotAdd()
        #expect(a.id == 0 && b.id == 1)
        try registry.hotRemove(0)
        expectErrno(.ENODEV) { try registry.hotRemove(0) }
        #expect(registry.hotAdd().id == 0, "the lowest free id is reused")
        #expect(registry.all.map(\.id) == [0, 1])
    }
}
