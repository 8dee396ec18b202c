import ZSync
import Dispatch
import Glibc
import Synchronization
import Testing
import ZComp
import ZramDevice
import ZramTestSupport

/// A codec whose stream creation and destruction take `delay` while `slow` is set: what a
/// device does under its state lock at `disksize` and `reset`.
final class SlowLifecycleCodec: Codec {
    /// Shared on/off switch.
    final class Switch: Sendable {
        let on = Atomic<Bool>(false)
        var isOn: Bool { on.load(ordering: .relaxed) }
    }
    let inner: any Codec
    let slow: Switch
    var name: String { inner.name }
    var pageSize: Int { inner.pageSize }
    init(inner: any Codec, slow: Switch) {
        self.inner = inner
        self.slow = slow
    }
    func makeStream() throws(CodecError) -> any CodecStream {
        if slow.isOn { usleep(100_000) }
        return Stream(inner: try inner.makeStream(), slow: slow)
    }
    final class Stream: CodecStream {
        let inner: any CodecStream
        let slow: Switch
        init(inner: any CodecStream, slow: Switch) {
            self.inner = inner
            self.slow = slow
        }
        deinit { if slow.isOn { usleep(100_000) } }
        func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
            try inner.compress(page, into: dst)
        }
        func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
            try inner.decompress(src, into: page)
        }
    }
}

/// Issue 10 items 2 and 9: hot_remove, reset, disksize and the pre-init attributes against
/// requests that hold the device, post-processing and readers of the statistics.
@Suite struct ConcurrentLifecycleTests {
    static func expectMissing(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("expected ENODEV for a removed device", sourceLocation: sourceLocation)
        } catch let error as ZramError {
            #expect(error.errno == .ENODEV && error.deviceMissing, "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    /// Item 2: a request routed before hot_remove kept the old device object and its writes
    /// were acknowledged, then lost.
    @Test func aRemovedDeviceRefusesEveryLaterRequest() throws {
        let registry = DeviceRegistry(dataDir: "/tmp")
        registry.hotAdd()
        let stale = registry.hotAdd()
        try registry.hotRemove(body: "1\r\n")
        #expect(registry.device(1) == nil)
        let page = Corpus.shared.page(3)
        Self.expectMissing { try stale.writeAttribute("disksize", "1M") }
        Self.expectMissing { try stale.writeAttribute("comp_algorithm", "zstd") }
        Self.expectMissing { _ = try stale.readAttribute("mm_stat") }
        Self.expectMissing { try page.withUnsafeBytes { try stale.write(0, $0) } }
        Self.expectMissing { try page.withUnsafeBytes { try stale.write(from: 0, $0, maxPages: 16) } }
        Self.expectMissing { try stale.discard(0) }
        Self.expectMissing { try registry.hotRemove(1) }
        #expect(!stale.isInitialised)
        #expect(registry.hotAdd().id == 1, "the id is free again, for a new device")
        Self.expectMissing { try stale.writeAttribute("disksize", "1M") }
    }

    /// Writers racing hot_remove: each write either lands before the removal or fails with
    /// ENODEV; none is acknowledged after it.
    @Test func writesRacingHotRemoveAreRefusedAfterIt() throws {
        for _ in 0..<20 {
            let registry = DeviceRegistry(dataDir: "/tmp")
            registry.hotAdd()
            let device = registry.hotAdd()
            try device.writeAttribute("disksize", "1M")
            let removed = Atomic<Bool>(false)
            let acknowledgedAfter = Atomic<Int>(0)
            let done = DispatchSemaphore(value: 0)
            PThread.detach {
                Corpus.shared.withPage(11) { page in
                    for i in 0..<2000 {
                        // A write that starts after hot_remove returned must not succeed.
                        let late = removed.load(ordering: .sequentiallyConsistent)
                        do {
                            try device.write(i % 256, page)
                            if late { acknowledgedAfter.add(1, ordering: .relaxed) }
                        } catch { if late { break } }
                    }
                }
                done.signal()
            }
            usleep(500)
            try registry.hotRemove(1)
            removed.store(true, ordering: .sequentiallyConsistent)
            done.wait()
            #expect(acknowledgedAfter.load(ordering: .relaxed) == 0)
        }
    }

    /// Item 9: attribute writes that need the state lock for writing waited behind a long
    /// recompression (holding a shared worker thread all the while); they answer EBUSY at once.
    @Test func writersAnswerEBUSYAtOnceDuringPostProcessing() throws {
        let sleeping = DispatchSemaphore(value: 0)
        let registry = DeviceRegistry(
            dataDir: "/tmp",
            makeCodec: { name, params, pageSize throws(CodecError) in
                let real = try Codecs.make(name, params: params, pageSize: pageSize)
                return name == "zstd" ? SlowCodec(inner: real, always: true, sleeping: sleeping) : real
            })
        let device = registry.hotAdd()
        try device.writeAttribute("recomp_algorithm", "algo=zstd priority=1")
        try device.writeAttribute("disksize", "4M")
        for i in 0..<20 { try Corpus.shared.withPage(100 + i) { try device.write(i, $0) } }
        let finished = DispatchSemaphore(value: 0)
        PThread.detach {
            _ = try? device.writeAttribute("recompress", "")
            finished.signal()
        }
        sleeping.wait()
        var times: [Double] = []
        for (attribute, body) in [("reset", "1"), ("disksize", "8M"), ("comp_algorithm", "zstd"), ("backing_dev", "x.sqlite")] {
            times.append(Stopwatch.milliseconds { expectErrno(.EBUSY) { try device.writeAttribute(attribute, body) } })
        }
        times.append(Stopwatch.milliseconds { expectErrno(.EBUSY) { try registry.hotRemove(0) } })
        #expect(registry.device(0) === device, "a refused hot_remove changes nothing")
        times.append(Stopwatch.milliseconds { _ = device.mmStat })
        finished.wait()
        ConcurrentInlineIOTests.expectNoWait(times, "refusals during a recompression")
        try device.writeAttribute("reset", "1")
        #expect(!device.isInitialised)
    }

    /// Item 9: `/metrics` reads every device's statistics; it must not wait while `disksize`
    /// builds a device or `reset` tears one down.
    @Test func statisticsDoNotWaitForInitialisationOrReset() throws {
        let slow = SlowLifecycleCodec.Switch()
        let device = ZramDevice(
            id: 0, dataDir: "/tmp",
            makeCodec: { name, params, pageSize throws(CodecError) in
                SlowLifecycleCodec(inner: try Codecs.make(name, params: params, pageSize: pageSize), slow: slow)
            })
        slow.on.store(true, ordering: .relaxed)
        for phase in ["disksize", "reset"] {
            let finished = DispatchSemaphore(value: 0)
            PThread.detach {
                if phase == "disksize" { try! device.writeAttribute("disksize", "16M") } else { try! device.writeAttribute("reset", "1") }
                finished.signal()
            }
            usleep(20_000)
            var times: [Double] = []
            for _ in 0..<10 {
                times.append(
                    Stopwatch.milliseconds {
                        _ = device.mmStat
                        _ = try? device.readAttribute("comp_algorithm")
                        _ = device.isInitialised
                    })
                usleep(5_000)
            }
            finished.wait()
            ConcurrentInlineIOTests.expectNoWait(times, "statistics during \(phase)")
        }
        slow.on.store(false, ordering: .relaxed)
    }
}
