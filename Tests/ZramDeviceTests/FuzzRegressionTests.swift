import Glibc
import Testing
import ZramDevice
import ZramTestSupport

/// Bugs the parser fuzzer (`Fuzz/`, docs/RELIABILITY.md) and the API fuzzer found, one test each.
@Suite struct FuzzRegressionTests {
    /// An uninitialised device on a fresh data directory.
    func freshDevice(_ configure: (inout DeviceConfig) -> Void = { _ in }) -> (ZramDevice, String) {
        var template = "/tmp/zramd-test-XXXXXX".utf8CString
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        let dir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var config = DeviceConfig()
        configure(&config)
        return (ZramDevice(id: 0, dataDir: dir, config: config), dir)
    }

    @Test("disksize and mem_limit near Int.max are ERANGE, not an overflow trap")
    func sizesRoundedUpPastIntMax() throws {
        let (device, dir) = freshDevice()
        defer { _ = system("rm -rf '\(dir)'") }
        // Int.max rounded up to whole 4 KiB pages is 2^63: it used to trap (crash the server).
        expectErrno(.ERANGE) { try device.writeAttribute("disksize", "9223372036854775807") }
        expectErrno(.ERANGE) { try device.writeAttribute("mem_limit", "9223372036854775807") }
        expectErrno(.ERANGE) { try device.writeAttribute("mem_limit", "9223372036854775000") }
        #expect(!device.isInitialised)
        try device.writeAttribute("mem_limit", "9223372036854771712")  // Int.max rounded down to a page: fits
        #expect(try device.readAttribute("mem_limit") == "9223372036854771712\n")
    }

    @Test("a disksize whose slot table cannot be allocated is ENOMEM, not an abort")
    func disksizeBeyondMemoryIsENOMEM() throws {
        let (device, dir) = freshDevice()
        defer { _ = system("rm -rf '\(dir)'") }
        // 1 PiB needs 2^38 slots (4 TiB of slot table): the allocation used to abort the process.
        expectErrno(.ENOMEM) { try device.writeAttribute("disksize", "1P") }
        #expect(DeviceConfig.defaultMaxSlots > 1 << 20, "a machine with over 32 MiB of memory takes a 4 GiB disk")
        let (small, smallDir) = freshDevice { $0.maxSlots = 16 }
        defer { _ = system("rm -rf '\(smallDir)'") }
        expectErrno(.ENOMEM) { try small.writeAttribute("disksize", "65537") }  // 17 pages
        try small.writeAttribute("disksize", "64K")
        #expect(small.slotCount == 16)
        small.reset()
        expectErrno(.ENOMEM) { try small.writeAttribute("disksize", "1M") }  // reset keeps the limit
    }

    @Test("writeback ranges that repeat or overlap pick each slot once, and cost no memory per repetition")
    func overlappingWritebackRanges() throws {
        let f = try DeviceFixture(disksize: "1M", backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<16 { try f.put(i, corpusPage: 4300 + i) }
        try f.device.writeAttribute("writeback", "page_indexes=0-15 page_indexes=0-15 page_index=3 page_indexes=2-9")
        // Each slot once: a block per page, none picked twice and skipped.
        let expected = (0..<16).filter { !isSameFilled(Corpus.shared.page(4300 + $0)) }.count
        #expect(f.device.bdStat.writes == expected && f.device.bdStat.count == expected, "\(f.device.bdStat)")
        #expect(f.device.debugStat.writebackSkipped == 0)
        for i in 0..<16 { #expect(try f.get(i) == Corpus.shared.page(4300 + i)) }
        // 200,000 repetitions of the whole disk (a 4 MB body) used to expand to 51 million
        // indexes (400 MB) before writing anything.
        let body = String(repeating: "page_indexes=0-255 ", count: 200_000)
        let start = ContinuousClock.now
        try f.device.writeAttribute("writeback", body)
        #expect(ContinuousClock.now - start < .seconds(5))
        expectErrno(.ERANGE) { try f.device.writeAttribute("writeback", "page_indexes=0-3 page_indexes=2-256") }
    }
}
