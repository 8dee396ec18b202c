import Dispatch
import Foundation
import Synchronization
import Testing
import ZComp
import ZramTestSupport

/// Counts who is inside a probe codec's streams.
final class Gauge: Sendable {
    /// Callers inside any stream now, and the most there ever were.
    let current = Atomic<Int>(0), peak = Atomic<Int>(0)
    /// The most callers ever inside one stream at once (must stay 1).
    let streamPeak = Atomic<Int>(0)
    let calls = Atomic<Int>(0)
}

/// A codec that does no compression: its streams count concurrent users, hold the
/// stream for `hold`, and say "does not fit" (or throw, when `fails`).
struct ProbeCodec: Codec {
    let name = "probe"
    let pageSize = Corpus.pageSize
    let gauge: Gauge
    var hold: Duration = .microseconds(200)
    var fails = false

    func makeStream() throws(CodecError) -> any CodecStream { ProbeStream(self) }
}

final class ProbeStream: CodecStream {
    let codec: ProbeCodec
    let users = Atomic<Int>(0)

    init(_ codec: ProbeCodec) { self.codec = codec }

    private func occupy() throws(CodecError) {
        let g = codec.gauge
        g.streamPeak.max(users.add(1, ordering: .sequentiallyConsistent).newValue, ordering: .sequentiallyConsistent)
        g.peak.max(g.current.add(1, ordering: .sequentiallyConsistent).newValue, ordering: .sequentiallyConsistent)
        g.calls.add(1, ordering: .relaxed)
        Thread.sleep(forTimeInterval: Double(codec.hold.components.attoseconds) / 1e18 + Double(codec.hold.components.seconds))
        g.current.subtract(1, ordering: .sequentiallyConsistent)
        users.subtract(1, ordering: .sequentiallyConsistent)
        if codec.fails { throw .failed("probe failure") }
    }

    func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
        try occupy()
        return nil
    }

    func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
        try occupy()
    }
}

/// CPU time the calling thread has used, in seconds.
func threadCPUTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Results the worker threads report back.
final class Tally: Sendable {
    let done = Atomic<Int>(0), mismatches = Atomic<Int>(0), errors = Atomic<Int>(0), overruns = Atomic<Int>(0)
}

/// `make test` re-runs this suite under ThreadSanitizer (`--filter Concurrent`).
@Suite struct ConcurrentStreamPoolTests {
    static let threads = 8

    @Test("8 threads share a pool of 2 real streams; every page round trips", arguments: Codecs.names)
    func realCodecs(_ name: String) throws {
        let pool = try StreamPool(codec: Codecs.make(name), count: 2)
        let tally = Tally()
        let pages = min(corpus.pageCount, 1536)
        runThreads(Self.threads) { t in
            let dst = GuardedBuffer(usable: pageSize)
            let out = GuardedBuffer(usable: pageSize)
            for index in Swift.stride(from: t, to: pages, by: Self.threads) {
                corpus.withPage(index) { page in
                    do {
                        guard let n = try pool.compress(page, into: dst.whole) else { return }
                        try pool.decompress(dst.bytes(n), into: out.whole)
                        if !out.usableBytes.elementsEqual(page) { tally.mismatches.add(1, ordering: .relaxed) }
                        if !out.intact(from: pageSize) || !dst.intact(from: pageSize - 1) {
                            tally.overruns.add(1, ordering: .relaxed)
                        }
                    } catch {
                        tally.errors.add(1, ordering: .relaxed)
                    }
                    tally.done.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(tally.done.load(ordering: .relaxed) == pages)
        #expect(tally.mismatches.load(ordering: .relaxed) == 0)
        #expect(tally.errors.load(ordering: .relaxed) == 0)
        #expect(tally.overruns.load(ordering: .relaxed) == 0)
    }

    @Test("a stream is never used by two threads at once")
    func streamsAreExclusive() throws {
        let gauge = Gauge()
        let pool = try StreamPool(codec: ProbeCodec(gauge: gauge), count: 3)
        let perThread = 250
        runThreads(Self.threads) { t in
            let buffer = GuardedBuffer(usable: pageSize)
            for i in 0..<perThread {
                if (i + t) % 2 == 0 {
                    _ = try? pool.compress(buffer.usableBytes, into: buffer.whole)
                } else {
                    try? pool.decompress(buffer.usableBytes, into: buffer.whole)
                }
            }
        }
        #expect(gauge.calls.load(ordering: .relaxed) == Self.threads * perThread)
        #expect(gauge.streamPeak.load(ordering: .relaxed) == 1)
        let peak = gauge.peak.load(ordering: .relaxed)
        #expect(peak <= pool.count)
        #expect(peak >= 2, "the pool never ran two streams at once")
    }

    @Test("a caller that finds every stream busy sleeps until one is free")
    func waitersBlock() throws {
        let gauge = Gauge()
        let hold = Duration.milliseconds(150)
        let pool = try StreamPool(codec: ProbeCodec(gauge: gauge, hold: hold), count: 1)
        let holder = Thread {
            let buffer = GuardedBuffer(usable: pageSize)
            _ = try? pool.compress(buffer.usableBytes, into: buffer.whole)
        }
        holder.start()
        while gauge.current.load(ordering: .sequentiallyConsistent) == 0 { usleep(1000) }

        let waiters = 3
        let tally = Tally()
        let results = Results()
        runThreads(waiters) { _ in
            let buffer = GuardedBuffer(usable: pageSize)
            let start = ContinuousClock.now, cpu = threadCPUTime()
            do {
                #expect(try pool.compress(buffer.usableBytes, into: buffer.whole) == nil)
                tally.done.add(1, ordering: .relaxed)
            } catch {
                tally.errors.add(1, ordering: .relaxed)
            }
            let wall = ContinuousClock.now - start
            results.wall.max(Int(wall / .microseconds(1)), ordering: .relaxed)
            results.cpu.max(Int((threadCPUTime() - cpu) * 1e6), ordering: .relaxed)
        }
        #expect(tally.done.load(ordering: .relaxed) == waiters)
        #expect(tally.errors.load(ordering: .relaxed) == 0)
        #expect(gauge.peak.load(ordering: .relaxed) == 1)
        #expect(gauge.calls.load(ordering: .relaxed) == waiters + 1)
        // The last waiter queued behind the holder and two others: three holds at least.
        let wall = results.wall.load(ordering: .relaxed), cpu = results.cpu.load(ordering: .relaxed)
        #expect(wall >= 3 * 140_000, "slowest waiter took \(wall) µs")
        // Sleeping, not spinning: a waiter burns a tiny fraction of the time it waits.
        #expect(cpu * 10 < wall, "a waiter used \(cpu) µs of CPU in \(wall) µs")
    }

    @Test("a stream whose call throws goes back to the pool")
    func errorsReleaseTheStream() throws {
        let gauge = Gauge()
        let pool = try StreamPool(codec: ProbeCodec(gauge: gauge, hold: .zero, fails: true), count: 2)
        let tally = Tally()
        runThreads(4) { _ in
            let buffer = GuardedBuffer(usable: pageSize)
            for _ in 0..<50 {
                do {
                    _ = try pool.compress(buffer.usableBytes, into: buffer.whole)
                } catch CodecError.failed {
                    tally.errors.add(1, ordering: .relaxed)
                } catch {}
            }
        }
        #expect(tally.errors.load(ordering: .relaxed) == 200)
        #expect(gauge.streamPeak.load(ordering: .relaxed) == 1)
    }
}

/// Maxima the waiter threads report.
final class Results: Sendable {
    let wall = Atomic<Int>(0), cpu = Atomic<Int>(0)
}
