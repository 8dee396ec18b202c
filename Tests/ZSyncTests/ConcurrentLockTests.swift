import Glibc
import Synchronization
import Testing
import ZSync

/// The locks every layer relies on, driven from real threads (run under ThreadSanitizer by
/// `make test-tsan`).
@Suite struct ConcurrentLockTests {
    /// Runs `body(i)` on `count` threads at once and waits for them all.
    static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let threads = (0..<count).map { i in PThread.spawn { body(i) } }
        for thread in threads { PThread.join(thread) }
    }

    /// Runs `hold` on another thread, which calls its argument while it holds what it locked;
    /// `body` runs here meanwhile, then the holder lets go and is joined.
    static func whileHeldElsewhere(hold: @escaping @Sendable (_ holding: () -> Void) -> Void, meanwhile body: () -> Void) {
        let held = Watched(false)
        let release = Watched(false)
        let holder = PThread.spawn {
            hold {
                held.withLock { $0 = true }
                release.wait(until: { $0 })
            }
        }
        held.wait(until: { $0 })
        body()
        release.withLock { $0 = true }
        PThread.join(holder)
    }

    @Test func lockedCountsExactlyFromManyThreads() {
        let counter = Locked(0)
        Self.onThreads(4) { _ in for _ in 0..<20_000 { counter.withLock { $0 += 1 } } }
        #expect(counter.withLock { $0 } == 80_000)
    }

    @Test func perCPUCountersSumExactlyFromManyThreads() {
        let counters = PerCPUCounters(slots: 3)
        Self.onThreads(4) { i in
            for n in 0..<20_000 {
                counters.add(0, 1)
                counters.add(2, n % 2 == 0 ? i : -i)
                if n % 1000 == 0 { sched_yield() }  // move between CPUs now and then
            }
        }
        #expect(counters.load(0) == 80_000)
        #expect(counters.load(1) == 0)
        #expect(counters.load(2) == 0)
    }

    @Test func lockedIsBusyWhileAnotherThreadHoldsIt() {
        let value = Locked(0)
        Self.whileHeldElsewhere(
            hold: { holding in value.withLock { _ in holding() } },
            meanwhile: {
                #expect(value.withLockIfAvailable { $0 } == nil, "busy while the other thread holds it")
            })
        #expect(value.withLockIfAvailable { $0 } == 0)
    }

    @Test func rwLockedReadersNeverSeeAHalfWrite() {
        let pair = RWLocked((0, 0))
        let torn = Atomic<Int>(0)
        Self.onThreads(4) { i in
            for n in 0..<5_000 {
                if i == 0 {
                    pair.write { $0 = (n, n) }
                } else if pair.read({ $0.0 != $0.1 }) {
                    torn.add(1, ordering: .relaxed)
                }
            }
        }
        #expect(torn.load(ordering: .relaxed) == 0)
        #expect(pair.read { $0 } == (4_999, 4_999))
    }

    @Test func rwLockedWriterGivesUpAfterItsPatience() {
        let state = RWLocked(0)
        Self.whileHeldElsewhere(
            hold: { holding in state.read { _ in holding() } },
            meanwhile: {
                #expect(state.readIfAvailable { $0 } == 0, "readers share the lock")
                let start = MonotonicClock.nanoseconds()
                #expect(state.write(waitingAtMost: 0.05) { $0 = 1 } == nil, "a reader holds it")
                let waited = Double(MonotonicClock.nanoseconds() - start) / 1e9
                #expect(waited >= 0.04 && waited < 5, "waited \(waited) s")
            })
        #expect(state.write(waitingAtMost: 0.05) { $0 = 2 } != nil)
        #expect(state.read { $0 } == 2)
    }

    @Test func conditionWakesTheWaiterAndTimesOut() {
        let mutex = PThreadMutex()
        let condition = PThreadCondition()
        let flag = Flag()
        let waiter = PThread.spawn {
            mutex.lock()
            while !flag.ready { condition.wait(mutex) }
            mutex.unlock()
        }
        mutex.withLock {
            flag.ready = true
            condition.signal()
        }
        PThread.join(waiter)
        let start = MonotonicClock.nanoseconds()
        let woken = mutex.withLock { condition.wait(mutex, until: PThreadCondition.deadline(after: 0.05)) }
        #expect(!woken, "nobody signalled")
        #expect(MonotonicClock.nanoseconds() - start >= 40_000_000)
    }

    @Test func watchedWaitsForTheStateItNeeds() {
        let stage = Watched(0)
        let worker = PThread.spawn { for n in 1...3 { stage.withLock { $0 = n } } }
        #expect(stage.wait(until: { $0 == 3 }))
        PThread.join(worker)
        #expect(!stage.wait(until: { $0 == 4 }, deadline: PThreadCondition.deadline(after: 0.02)))
    }

    @Test func lockedEndsItsNonCopyableValueOnce() {
        let ended = Ended()
        do {
            let locked = Locked(Resource(ended: ended))
            locked.withLock { _ in }
            #expect(ended.count.load(ordering: .relaxed) == 0)
        }
        #expect(ended.count.load(ordering: .relaxed) == 1)
    }
}

final class Ended: Sendable { let count = Atomic<Int>(0) }

/// A non-copyable value that counts its ends.
struct Resource: ~Copyable {
    let ended: Ended
    deinit { ended.count.add(1, ordering: .relaxed) }
}

/// A flag guarded by the mutex the test holds around every access.
final class Flag: @unchecked Sendable { var ready = false }
