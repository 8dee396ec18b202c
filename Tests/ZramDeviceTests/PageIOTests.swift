import Testing
import ZramDevice
import ZramTestSupport

@Suite struct PageIOTests {
    @Test func corpusPagesRoundTripAndStatsAddUp() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        let count = 3000
        for i in 0..<count { try f.put(i, corpusPage: i * 4) }
        var mismatches = 0
        for i in 0..<count where try f.get(i) != Corpus.shared.page(i * 4) { mismatches += 1 }
        #expect(mismatches == 0)
        let mm = try f.mmStat()
        #expect(mm.count == 9)
        #expect(mm[0] == count * 4096, "orig_data_size counts every stored page, same pages included")
        #expect(mm[1] > 0 && mm[1] <= mm[2], "compr_data_size ≤ mem_used_total")
        #expect(mm[4] >= mm[2], "mem_used_max ≥ mem_used_total")
        #expect(mm[7] > 0 && mm[8] == mm[7], "the corpus has huge pages")
        #expect(f.device.mmStat.origDataSize == mm[0])
    }

    @Test func sameFilledPagesTakeNoMemory() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        try f.put(0, bytes: [UInt8](repeating: 0, count: 4096))
        var word = [UInt8](repeating: 0, count: 4096)
        for i in stride(from: 0, to: 4096, by: 8) { word[i] = 0xAB; word[i + 3] = 0x17 }
        try f.put(1, bytes: word)
        var almost = word
        almost[4095] = 1
        try f.put(2, bytes: almost)
        #expect(try f.get(0) == [UInt8](repeating: 0, count: 4096))
        #expect(try f.get(1) == word)
        #expect(try f.get(2) == almost)
        let mm = try f.mmStat()
        #expect(mm[5] == 2, "same_pages")
        #expect(mm[0] == 3 * 4096)
        try f.device.discard(0)
        try f.device.discard(1)
        #expect(try f.mmStat()[5] == 0)
    }

    @Test func incompressiblePagesAreStoredHugeAndOverwriteFreesThem() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        var rng = SplitMix64(seed: 9)
        let random = (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try f.put(5, bytes: random)
        #expect(try f.get(5) == random)
        var mm = try f.mmStat()
        #expect(mm[1] == 4096 && mm[7] == 1 && mm[8] == 1)
        try f.put(5, corpusPage: 0)
        mm = try f.mmStat()
        #expect(mm[7] == 0 && mm[8] == 1, "huge_pages drops, huge_pages_since does not")
        #expect(mm[1] < 4096 && mm[0] == 4096)
        #expect(try f.get(5) == Corpus.shared.page(0))
    }

    @Test func discardIsIdempotentAndCountsFreedPages() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        try f.put(3, corpusPage: 100)
        try f.device.discard(3)
        try f.device.discard(3)
        #expect(try f.get(3) == nil)
        #expect(try f.device.readAttribute("io_stat") == "       0        0        0        1\n")
        #expect(try f.mmStat()[0...2] == [0, 0, 0], "the last object went and its chunks with it")
    }

    @Test func badIndexesAndLengthsCountAsInvalidIO() throws {
        let f = try DeviceFixture(disksize: "1M")
        defer { f.remove() }
        expectErrno(.ERANGE) { try f.put(256, corpusPage: 0) }
        expectErrno(.ERANGE) { _ = try f.get(-1) }
        expectErrno(.ERANGE) { try f.device.discard(1 << 40) }
        expectErrno(.EINVAL) { try f.put(0, bytes: [1, 2, 3]) }
        expectErrno(.EINVAL) { try f.put(0, bytes: [UInt8](repeating: 7, count: 8192)) }
        #expect(try f.device.readAttribute("io_stat") == "       0        0        5        0\n")
        #expect(try f.get(0) == nil, "nothing was stored by the refused writes")
    }

    @Test func anUninitialisedDeviceRefusesPageIO() throws {
        let device = ZramDevice(id: 3, dataDir: "/tmp")
        expectErrno(.EINVAL) { try [UInt8](repeating: 1, count: 4096).withUnsafeBytes { try device.write(0, $0) } }
        #expect(try device.readAttribute("mm_stat") == "       0        0        0        0        0        0        0        0        0\n")
    }
}

/// Issue 10 item 3: a batch whose range crossed the end of the disk wrote the pages before
/// the end, then answered 400; a body that was not whole pages was not counted.
@Suite struct BatchValidationTests {
    @Test func aRejectedBatchChangesNothingAndCounts() throws {
        let f = try DeviceFixture(disksize: "1M")
        defer { f.remove() }
        let slots = f.device.slotCount
        let pages = (0..<4).flatMap { Corpus.shared.page(40 + $0) }
        pages.withUnsafeBytes { body in
            expectErrno(.ERANGE) { try f.device.write(from: slots - 2, body, maxPages: 16) }
            expectErrno(.ERANGE) { try f.device.write(from: -1, body, maxPages: 16) }
            expectErrno(.EINVAL) { try f.device.write(from: 0, UnsafeRawBufferPointer(rebasing: body[..<4097]), maxPages: 16) }
            expectErrno(.EINVAL) { try f.device.write(from: 0, UnsafeRawBufferPointer(rebasing: body[..<0]), maxPages: 16) }
            expectErrno(.E2BIG) { try f.device.write(from: 0, body, maxPages: 3) }
        }
        #expect(f.device.mmStat.origDataSize == 0, "nothing was written")
        #expect(f.device.ioStat.invalidIO == 4, "E2BIG is a server limit, the rest count")
        var out = [UInt8](repeating: 1, count: 2 * 4096)
        out.withUnsafeMutableBytes { buffer in
            expectErrno(.ERANGE) { try f.device.read(from: slots - 1, count: 2, into: buffer, maxPages: 16) }
        }
        #expect(f.device.ioStat.invalidIO == 5)
        try pages.withUnsafeBytes { try f.device.write(from: slots - 4, $0, maxPages: 16) }
        var back = [UInt8](repeating: 0, count: pages.count)
        try back.withUnsafeMutableBytes { try f.device.read(from: slots - 4, count: 4, into: $0, maxPages: 16) }
        #expect(back == pages)
    }
}
