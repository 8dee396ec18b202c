import Testing
import ZramDevice
import ZramTestSupport
import Glibc

@Suite struct WritebackTests {
    @Test func idlePagesGoToSQLiteAndReadBackExact() throws {
        let f = try DeviceFixture(backing: "zram0.sqlite")
        defer { f.remove() }
        for i in 0..<400 { try f.put(i, corpusPage: i * 5) }
        try f.put(400, bytes: [UInt8](repeating: 0, count: 4096))
        let memBefore = try f.mmStat()[1]
        try f.device.writeAttribute("idle", "all")
        _ = try f.get(0)  // an access clears idle: slot 0 stays in memory
        try f.device.writeAttribute("writeback", "idle")
        // Same-filled pages are never idle, so never written back.
        let expected = (1..<400).filter { !isSameFilled(Corpus.shared.page($0 * 5)) }.count
        let bd = f.device.bdStat
        #expect(bd.count == expected && bd.writes == expected, "\(bd)")
        let mm = try f.mmStat()
        #expect(mm[0] == 401 * 4096, "orig_data_size still counts written-back pages")
        #expect(mm[1] < memBefore / 100)
        for i in 0..<400 { #expect(try f.get(i) == Corpus.shared.page(i * 5)) }
        #expect(f.device.bdStat.reads == expected)
        let states = try f.device.blockState()
        #expect(states.split(separator: "\n").filter { $0.hasSuffix(".w....") || $0.hasSuffix(".wh...") }.count == expected)
        // Overwrite and discard free the blocks.
        let freed = [1, 2].filter { !isSameFilled(Corpus.shared.page($0 * 5)) }.count
        try f.put(1, corpusPage: 9)
        try f.device.discard(2)
        #expect(f.device.bdStat.count == expected - freed)
        #expect(try f.get(1) == Corpus.shared.page(9))
    }

    @Test func explicitIndexesAndKindsPickTheirSlots() throws {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<100 { try f.put(i, corpusPage: 4300 + i) }
        try f.device.writeAttribute("writeback", "page_index=3 page_index=7 page_indexes=10-19")
        #expect(f.device.bdStat.count == 12)
        expectErrno(.ERANGE) { try f.device.writeAttribute("writeback", "page_indexes=10-99999") }
        let huge = try f.device.blockState().split(separator: "\n").filter { $0.hasSuffix("..h...") }.count
        try f.device.writeAttribute("writeback", "type=huge")
        #expect(f.device.bdStat.count == 12 + huge)
        for i in 0..<100 { #expect(try f.get(i) == Corpus.shared.page(4300 + i)) }
    }

    @Test func writebackLimitIsABudgetInPages() throws {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<100 { try f.put(i, corpusPage: i) }
        try f.device.writeAttribute("writeback_batch_size", "8")
        try f.device.writeAttribute("writeback_limit_enable", "1")
        try f.device.writeAttribute("writeback_limit", "20")
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("writeback", "idle")
        #expect(f.device.bdStat.count == 20, "the budget is spent to the page, across batches of 8")
        #expect(try f.device.readAttribute("writeback_limit") == "0\n")
        // A budget smaller than one batch still writes what it allows.
        try f.device.writeAttribute("writeback_limit", "3")
        try f.device.writeAttribute("writeback", "idle")
        #expect(f.device.bdStat.count == 23)
        try f.device.writeAttribute("writeback_limit", "0")
        expectErrno(.EIO) { try f.device.writeAttribute("writeback", "idle") }
        try f.device.writeAttribute("writeback_limit_enable", "0")
        try f.device.writeAttribute("writeback", "idle")
        #expect(f.device.bdStat.count == 100 - f.device.mmStat.samePages)
        for i in 0..<100 { #expect(try f.get(i) == Corpus.shared.page(i)) }
    }

    @Test func compressedWritebackStoresTheCompressedBytes() throws {
        let f = try DeviceFixture(algorithm: "zstd", backing: "wb.sqlite") { device in
            try device.writeAttribute("compressed_writeback", "1")
        }
        defer { f.remove() }
        for i in 0..<200 { try f.put(i, corpusPage: 10_100 + i) }
        try f.device.writeAttribute("writeback", "page_indexes=0-199")
        #expect(f.device.mmStat.comprDataSize == 0)
        for i in 0..<200 { #expect(try f.get(i) == Corpus.shared.page(10_100 + i)) }
    }

    /// Issue 10 item 1: a huge page written back with compressed_writeback=1 kept only `stored`,
    /// so reads decompressed a raw page (EIO "malformed block").
    @Test(arguments: ["lz4", "zstd"], [false, true])
    func hugePagesWrittenBackReadBackExact(algorithm: String, compressed: Bool) throws {
        for batch in [1, 32] {
            let f = try DeviceFixture(algorithm: algorithm, backing: "wb.sqlite") { device in
                try device.writeAttribute("compressed_writeback", compressed ? "1" : "0")
            }
            defer { f.remove() }
            try f.device.writeAttribute("writeback_batch_size", String(batch))
            var rng = SplitMix64(seed: 10)
            var expected: [[UInt8]] = []
            for i in 0..<80 {
                let page = i % 2 == 0 ? (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) } : Corpus.shared.page(200 + i)
                expected.append(page)
                try f.put(i, bytes: page)
            }
            let huge = (0..<80).filter { try! f.device.slotInfo($0)!.flags.contains("h") }
            #expect(huge.count >= 40, "random pages are huge")
            try f.device.writeAttribute("writeback", "huge")
            for i in huge {
                let flags = try f.device.slotInfo(i)!.flags
                #expect(flags.contains("w") && flags.contains("h") == compressed, "slot \(i): \(flags)")
            }
            try f.device.writeAttribute("idle", "all")
            try f.device.writeAttribute("writeback", "idle")
            for i in 0..<80 { #expect(try f.get(i) == expected[i], "slot \(i), batch \(batch)") }
            #expect(f.device.ioStat.failedReads == 0)
            #expect(f.device.mmStat.hugePages == 0, "written-back pages are not in memory")
        }
    }

    @Test func aBrokenBackingFileFailsOnlyItsPages() throws {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<50 { try f.put(i, corpusPage: 100 + i) }
        try f.device.writeAttribute("writeback", "page_indexes=0-24")
        // Scribble over the database and its write-ahead log, where fresh pages live.
        var rng = SplitMix64(seed: 4)
        for path in [f.dataDir + "/wb.sqlite", f.dataDir + "/wb.sqlite-wal"] {
            guard let file = fopen(path, "r+") else { continue }
            fseek(file, 0, SEEK_END)
            let size = ftell(file)
            for _ in 0..<2000 where size > 8192 {
                fseek(file, Int(rng.next() % UInt64(size - 4096)) + 4096, SEEK_SET)
                fputc(Int32(rng.next() & 0xFF), file)
            }
            fclose(file)
        }
        var failed = 0
        for i in 0..<25 {
            do {
                #expect(try f.get(i) == Corpus.shared.page(100 + i), "a written-back page came back with other bytes")
            } catch { failed += 1 }
        }
        for i in 25..<50 { #expect(try f.get(i) == Corpus.shared.page(100 + i)) }
        #expect(failed > 0, "the corruption hit written-back pages")
        #expect(f.device.ioStat.failedReads == failed)
    }
}

/// True when the page is one 8-byte word repeated (what the device stores as `same`).
func isSameFilled(_ page: [UInt8]) -> Bool {
    (8..<page.count).allSatisfy { page[$0] == page[$0 % 8] }
}
