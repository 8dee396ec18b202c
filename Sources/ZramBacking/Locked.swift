#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind its own pthread mutex.
///
/// Why not `Synchronization.Mutex`: on Linux it is a priority-inheritance futex, and when it
/// is contended the kernel hands the lock to the waiter without a user-space atomic that
/// ThreadSanitizer can see, so every contended `Mutex` shows up as a data race under
/// `--sanitize=thread` (reproduced with Swift 6.3.1: four threads incrementing a counter
/// inside `Mutex.withLock` give the exact total and a TSan "Swift access race"). TSan
/// intercepts `pthread_mutex_*`, so with this lock the Concurrent suite checks our code,
/// not the lock. A pthread mutex may sleep, as the spec's per-connection locks may.
///
/// `@unchecked Sendable` is sound because `value` is only reachable through `withLock` and
/// `withLockIfAvailable`, which hold the mutex for the whole access and never let the
/// `inout` reference escape the closure; the mutex itself lives in its own allocation, so
/// it never moves.
final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: consuming Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        self.value = value
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held, sleeping until it is free.
    func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` if the lock is free right now; nil (and `body` not run) otherwise.
    func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
