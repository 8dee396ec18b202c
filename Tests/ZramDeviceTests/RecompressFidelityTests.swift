import Glibc
import Synchronization
import Testing
import ZComp
@testable import ZramDevice
import ZramTestSupport

/// Issue 10 item 4: recompression lost information (codec errors swallowed) and state
/// (idle kept, marks left after ENOMEM, refused near mem_limit).
@Suite struct RecompressFidelityTests {
    /// block_state lines as (index, access time, flags).
    static func blockState(_ device: ZramDevice) throws -> [Int: (time: Int, flags: String)] {
        var out: [Int: (time: Int, flags: String)] = [:]
        for line in try device.blockState().split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            out[Int(fields[0])!] = (Int(Double(fields[1])!), String(fields[2]))
        }
        return out
    }

    /// Slots still marked for post-processing.
    static func marked(_ device: ZramDevice) -> Int {
        device.withLive { live in
            (0..<live.slots.count).filter { i in live.slots.withLock(i) { live.slots[i].flags.contains(.postProcessing) } }.count
        } ?? 0
    }

    @Test func codecErrorsAreCountedAndDoNotMarkIncompressible() throws {
        let f = try DeviceFixture(
            algorithm: "lz4", secondary: ["zstd"],
            makeCodec: { name, params, pageSize throws(CodecError) in
                let real = try Codecs.make(name, params: params, pageSize: pageSize)
                return name == "zstd" ? FlakyCodec(inner: real, compressEvery: 1, decompressEvery: 0) : real
            })
        defer { f.remove() }
        for i in 0..<100 { try f.put(i, corpusPage: 300 + i) }
        try f.device.writeAttribute("recompress", "")
        let debug = f.device.debugStat
        #expect(debug.recompressAttempts > 0)
        #expect(debug.recompressFailed == debug.recompressAttempts, "\(debug)")
        #expect(try f.device.readAttribute("debug_stat").split(separator: " ", omittingEmptySubsequences: true).count == 6)
        #expect(try Self.blockState(f.device).values.allSatisfy { !$0.flags.hasSuffix("n") }, "a failing codec proves nothing")
        for i in 0..<100 { #expect(try f.get(i) == Corpus.shared.page(300 + i)) }
    }

    @Test func recompressedSlotsLoseIdleSoWritebackIdlePicksTheRest() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["zstd"], backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: 2000 + i) }
        sleep(1)
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("recompress", "type=idle max_pages=100")
        let states = try Self.blockState(f.device)
        let recompressed = states.filter { $0.value.flags.contains("r") }
        let stillIdle = states.filter { $0.value.flags.contains("i") }
        #expect(!recompressed.isEmpty && !stillIdle.isEmpty)
        #expect(recompressed.values.allSatisfy { !$0.flags.contains("i") && $0.time == 0 }, "recompression clears idle and the access time")
        try f.device.writeAttribute("writeback", "idle")
        #expect(f.device.bdStat.count == stillIdle.count)
        for i in 0..<300 { #expect(try f.get(i) == Corpus.shared.page(2000 + i)) }
    }

    @Test func enomemPartWayLeavesNothingMarked() throws {
        let regions = Atomic<Int>(0)
        var config = DeviceConfig(primary: "lz4")
        config.secondary[1] = AlgorithmChoice(name: "zstd")
        // One 2 MiB region, then the system "refuses".
        config.mapRegion = { bytes in
            guard regions.add(1, ordering: .relaxed).newValue <= 1 else { return nil }
            let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            return region == MAP_FAILED ? nil : region
        }
        let device = ZramDevice(id: 0, dataDir: "/tmp", config: config)
        defer { device.reset() }
        try device.writeAttribute("disksize", "64M")
        var stored: [Int] = []
        for i in 0..<4000 {
            do {
                try Corpus.shared.withPage(i) { try device.write(i, $0) }
                stored.append(i)
            } catch let error as ZramError {
                #expect(error.errno == .ENOMEM)
                break
            }
        }
        #expect(stored.count < 4000, "the pool filled up")
        do {
            try device.writeAttribute("recompress", "")
            Issue.record("expected ENOMEM part-way")
        } catch {
            #expect(error.errno == .ENOMEM, "\(error)")
        }
        #expect(Self.marked(device) == 0, "no slot stays marked after ENOMEM")
        var page = [UInt8](repeating: 0, count: 4096)
        for i in stored {
            _ = try page.withUnsafeMutableBytes { try device.read(i, into: $0) }
            #expect(page == Corpus.shared.page(i))
        }
    }

    @Test func atMemLimitRecompressionThatShrinksIsAllowed() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["zstd"])
        defer { f.remove() }
        for i in 0..<500 { try f.put(i, corpusPage: 5000 + i) }
        try f.device.writeAttribute("mem_limit", String(f.device.mmStat.memUsedTotal))
        expectErrno(.ENOMEM) { for i in 500..<1000 { try f.put(i, corpusPage: 5000 + i) } }
        try f.device.writeAttribute("recompress", "")
        #expect(f.device.debugStat.recompressed > 100, "\(f.device.debugStat)")
        #expect(Self.marked(f.device) == 0)
        for i in 0..<500 { #expect(try f.get(i) == Corpus.shared.page(5000 + i)) }
    }

    /// Issue 10 item 5: `priority=1 level=19` was stored by algorithm name and copied to the
    /// primary too, so zstd-1 → zstd-19 recompression ran level 19 twice and gained nothing.
    @Test func algorithmParamsArePerPriority() throws {
        let f = try DeviceFixture(
            algorithm: "zstd",
            configure: { device in
                try device.writeAttribute("algorithm_params", "algo=zstd level=1")
                try device.writeAttribute("recomp_algorithm", "algo=zstd priority=1")
                try device.writeAttribute("algorithm_params", "priority=1 level=19")
            })
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: 7000 + i) }
        let before = f.device.mmStat.comprDataSize
        try f.device.writeAttribute("recompress", "")
        let after = f.device.mmStat.comprDataSize
        #expect(f.device.debugStat.recompressed > 0, "zstd-19 after zstd-1 shrinks pages")
        #expect(after < before, "\(before) → \(after)")
        for i in 0..<300 { #expect(try f.get(i) == Corpus.shared.page(7000 + i)) }
    }

    @Test func algoNamesTheLowestPriorityRunningIt() throws {
        var config = DeviceConfig(primary: "zstd")
        config.secondary[1] = AlgorithmChoice(name: "zstd")
        try ZramDevice.applyParams(CodecParams(level: 7), algo: "zstd", priority: nil, to: &config) { _ in }
        #expect(config.primary.params.level == 7 && config.secondary[1]!.params.level == nil)
        try ZramDevice.applyParams(CodecParams(level: 19), algo: nil, priority: 1, to: &config) { _ in }
        #expect(config.primary.params.level == 7 && config.secondary[1]!.params.level == 19)
        try ZramDevice.applyParams(CodecParams(level: 5), algo: "deflate", priority: nil, to: &config) { _ in }
        #expect(config.paramsByName["deflate"]?.level == 5, "kept until deflate is chosen")
        expectErrno(.EINVAL) { try ZramDevice.applyParams(CodecParams(), algo: nil, priority: 2, to: &config) { _ in } }
    }
}
