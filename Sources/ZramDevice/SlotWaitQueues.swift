import Synchronization
import ZSync

/// Hashed wait queues for sleeping on busy slot locks, as the kernel's `wait_on_bit`.
///
/// A slot lock is one bit; a thread that finds it taken sleeps on the queue its
/// index hashes to. The queue's mutex is held only to sleep and to wake, never
/// while a slot is in use, so a queue shared by many slots never makes one slot wait
/// for another's work.
final class SlotWaitQueues: @unchecked Sendable {
    private static let count = 256
    private let mutexes = (0..<SlotWaitQueues.count).map { _ in PThreadMutex() }
    private let conditions = (0..<SlotWaitQueues.count).map { _ in PThreadCondition() }
    /// Sleepers per queue, read on every slot unlock: raw, so that an unlock with no sleeper
    /// costs one atomic load. `@unchecked Sendable`: only ever accessed atomically.
    private let waiters: UnsafeMutablePointer<Atomic<Int>>

    init() {
        waiters = .allocate(capacity: Self.count)
        for i in 0..<Self.count { (waiters + i).initialize(to: Atomic(0)) }
    }

    deinit {
        waiters.deinitialize(count: Self.count)
        waiters.deallocate()
    }

    /// Sleeps until `isFree()` holds; `isFree` is re-checked under the queue's mutex.
    func wait(slot: Int, until isFree: () -> Bool) {
        let q = slot & (Self.count - 1)
        waiters[q].add(1, ordering: .sequentiallyConsistent)
        mutexes[q].lock()
        while !isFree() { conditions[q].wait(mutexes[q]) }
        mutexes[q].unlock()
        waiters[q].subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Wakes the sleepers of `slot`'s queue, if any; call after releasing the bit.
    @inline(__always) func wake(slot: Int) {
        let q = slot & (Self.count - 1)
        guard waiters[q].load(ordering: .sequentiallyConsistent) > 0 else { return }
        mutexes[q].withLock { conditions[q].broadcast() }
    }
}
