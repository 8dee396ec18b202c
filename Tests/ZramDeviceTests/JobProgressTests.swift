import ZSync
import Dispatch
import Synchronization
import Testing
import ZramDevice
import ZramTestSupport

/// Post-processing runs as jobs (ZramDevice+Jobs.swift): progress, cancellation, checks up front.
@Suite struct JobProgressTests {
    @Test func aFullWritebackReportsEveryCandidate() throws {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: 4300 + i) }
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("writeback_batch_size", "7")
        let progress = JobProgress()
        let written = try f.device.run(f.device.prepareJob("writeback", "idle"), progress: progress)
        #expect(progress.isRunning && !progress.isCancelled)
        #expect(written == f.device.bdStat.count && written > 0)
        #expect(progress.total == progress.examined && progress.processed == written)
        for i in 0..<300 { #expect(try f.get(i) == Corpus.shared.page(4300 + i)) }
    }

    @Test func aCancelledWritebackStopsAtTheBatchBoundaryAndLeavesNoSlotMarked() throws {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        for i in 0..<200 { try f.put(i, corpusPage: 4300 + i) }
        try f.device.writeAttribute("idle", "all")
        let progress = JobProgress()
        progress.cancel()
        let written = try f.device.run(f.device.prepareJob("writeback", "idle"), progress: progress)
        #expect(written == 0 && f.device.bdStat.count == 0)
        #expect(progress.total > 0 && progress.examined == 0)
        // Every picked slot was un-marked: the synchronous form takes all of them.
        try f.device.writeAttribute("writeback", "idle")
        #expect(f.device.bdStat.count == progress.total)
        for i in 0..<200 { #expect(try f.get(i) == Corpus.shared.page(4300 + i)) }
    }

    @Test func aCancelledRecompressLeavesNoSlotMarked() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["zstd"])
        defer { f.remove() }
        for i in 0..<50 { try f.put(i, corpusPage: i * 7) }
        let progress = JobProgress()
        progress.cancel()
        #expect(try f.device.run(f.device.prepareJob("recompress", ""), progress: progress) == 0)
        #expect(f.device.debugStat.recompressAttempts == 0 && progress.total > 0)
        try f.device.writeAttribute("recompress", "")
        #expect(f.device.debugStat.recompressAttempts == progress.total)
        for i in 0..<50 { #expect(try f.get(i) == Corpus.shared.page(i * 7)) }
    }

    @Test func idleAndCompactReportProgress() throws {
        let f = try DeviceFixture(disksize: "1M")
        defer { f.remove() }
        for i in 0..<20 { try f.put(i, corpusPage: 4300 + i) }
        let cancelled = JobProgress()
        cancelled.cancel()
        #expect(try f.device.run(f.device.prepareJob("idle", "all"), progress: cancelled) == 0)
        let progress = JobProgress()
        #expect(try f.device.run(f.device.prepareJob("idle", "all"), progress: progress) == 20)
        #expect(progress.total == 256 && progress.examined == 256 && progress.processed == 20)
        let compact = JobProgress()
        _ = try f.device.run(f.device.prepareJob("compact", "1"), progress: compact)
        #expect(compact.total == 1 && compact.examined == 1)
    }

    @Test func badRequestsAreRefusedBeforeTheRun() throws {
        let f = try DeviceFixture()
        defer { f.remove() }
        expectErrno(.ENOENT) { _ = try f.device.prepareJob("reset", "1") }
        expectErrno(.ENODEV) { _ = try f.device.prepareJob("writeback", "idle") }
        expectErrno(.EINVAL) { _ = try f.device.prepareJob("writeback", "sideways") }
        expectErrno(.EINVAL) { _ = try f.device.prepareJob("recompress", "") }
        expectErrno(.EINVAL) { _ = try f.device.prepareJob("idle", "-1") }
        let wb = try DeviceFixture(disksize: "1M", backing: "wb.sqlite")
        defer { wb.remove() }
        expectErrno(.ERANGE) { _ = try wb.device.prepareJob("writeback", "page_index=256") }
        wb.device.reset()
        expectErrno(.EINVAL) { _ = try wb.device.prepareJob("compact", "1") }
    }
}

/// A cancel from another thread mid-run, with page I/O going on (in `make test-tsan`).
@Suite struct ConcurrentJobCancelTests {
    /// One writeback on a pthread of its own, cancelled once it has examined 20 pages while this
    /// thread reads pages. Returns whether the cancel landed before the end (a loaded machine can
    /// deschedule this thread for the whole run; then the attempt proves nothing and is repeated).
    static func attempt() throws -> Bool {
        let f = try DeviceFixture(backing: "wb.sqlite")
        defer { f.remove() }
        let count = 8000
        let page = { (i: Int) in Corpus.shared.page(i % Corpus.shared.pageCount) }
        for i in 0..<count { try f.put(i, corpusPage: i % Corpus.shared.pageCount) }
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("writeback_batch_size", "1")
        let progress = JobProgress()
        let prepared = try f.device.prepareJob("writeback", "idle")
        let device = f.device
        let written = Atomic<Int>(-1)
        let finished = DispatchSemaphore(value: 0)
        PThread.detach {
            written.store((try? device.run(prepared, progress: progress)) ?? -2, ordering: .releasing)
            finished.signal()
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while progress.examined < 20 {
            try #require(ContinuousClock.now < deadline, "the writeback never got going")
            for i in stride(from: 0, to: count, by: 397) { #expect(try f.get(i) == page(i)) }
        }
        progress.cancel()
        finished.wait()
        let done = written.load(ordering: .acquiring)
        #expect(done >= 0 && done == f.device.bdStat.count && done == progress.processed)
        for i in 0..<count { #expect(try f.get(i) == page(i)) }
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("writeback", "idle")
        for i in 0..<count { #expect(try f.get(i) == page(i)) }
        return progress.examined < progress.total
    }

    @Test func cancellingMidWritebackWhilePagesAreReadKeepsEverySlotExact() throws {
        var landed = false
        for _ in 0..<4 where !landed { landed = try Self.attempt() }
        #expect(landed, "in four attempts the cancel never came before the run's end")
    }
}
