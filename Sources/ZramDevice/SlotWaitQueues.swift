import Glibc
import Synchronization

/// Hashed wait queues for sleeping on busy slot locks, as the kernel's `wait_on_bit`.
///
/// A slot lock is one bit; a thread that finds it taken sleeps on the queue its
/// index hashes to. The queue's mutex is held only to sleep and to wake, never
/// while a slot is in use, so a queue shared by many slots never makes one slot wait
/// for another's work.
final class SlotWaitQueues: @unchecked Sendable {
    private static let count = 256
    private let mutexes: UnsafeMutablePointer<pthread_mutex_t>
    private let conditions: UnsafeMutablePointer<pthread_cond_t>
    private let waiters: UnsafeMutablePointer<Atomic<Int>>

    init() {
        mutexes = .allocate(capacity: Self.count)
        conditions = .allocate(capacity: Self.count)
        waiters = .allocate(capacity: Self.count)
        for i in 0..<Self.count {
            (mutexes + i).initialize(to: pthread_mutex_t())
            pthread_mutex_init(mutexes + i, nil)
            (conditions + i).initialize(to: pthread_cond_t())
            pthread_cond_init(conditions + i, nil)
            (waiters + i).initialize(to: Atomic(0))
        }
    }

    deinit {
        for i in 0..<Self.count {
            pthread_mutex_destroy(mutexes + i)
            pthread_cond_destroy(conditions + i)
        }
        mutexes.deallocate()
        conditions.deallocate()
        waiters.deinitialize(count: Self.count)
        waiters.deallocate()
    }

    /// Sleeps until `isFree()` holds; `isFree` is re-checked under the queue's mutex.
    func wait(slot: Int, until isFree: () -> Bool) {
        let q = slot & (Self.count - 1)
        waiters[q].add(1, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(mutexes + q)
        while !isFree() { pthread_cond_wait(conditions + q, mutexes + q) }
        pthread_mutex_unlock(mutexes + q)
        waiters[q].subtract(1, ordering: .sequentiallyConsistent)
    }

    /// Wakes the sleepers of `slot`'s queue, if any; call after releasing the bit.
    @inline(__always) func wake(slot: Int) {
        let q = slot & (Self.count - 1)
        guard waiters[q].load(ordering: .sequentiallyConsistent) > 0 else { return }
        pthread_mutex_lock(mutexes + q)
        pthread_cond_broadcast(conditions + q)
        pthread_mutex_unlock(mutexes + q)
    }
}
