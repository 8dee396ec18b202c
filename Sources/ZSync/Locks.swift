import Glibc

// pthread locks with stable addresses, shared by every layer.
//
// Not Synchronization.Mutex: on Linux its lock lives in the prebuilt runtime, where
// ThreadSanitizer cannot see it, so every access it guards is reported as a race.
// pthread calls are intercepted by ThreadSanitizer and cost the same uncontended.

/// A pthread mutex at a stable heap address (Swift values move; pthread objects must not).
public final class PThreadMutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always) public func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) public func unlock() { pthread_mutex_unlock(mutex) }
    @inline(__always) public func tryLock() -> Bool { pthread_mutex_trylock(mutex) == 0 }

    @inline(__always) public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A pthread reader/writer lock at a stable heap address.
///
/// Readers may sleep while they hold it; glibc's default policy lets new readers
/// in while a writer waits, so a reader that nests another read never deadlocks.
public final class PThreadRWLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    public init() {
        rw = .allocate(capacity: 1)
        rw.initialize(to: pthread_rwlock_t())
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    @inline(__always) public func readLock() { pthread_rwlock_rdlock(rw) }
    @inline(__always) public func writeLock() { pthread_rwlock_wrlock(rw) }
    /// Takes the lock for writing only if no one holds it.
    @inline(__always) public func tryWriteLock() -> Bool { pthread_rwlock_trywrlock(rw) == 0 }
    /// Takes the lock for reading only if no writer holds it.
    @inline(__always) public func tryReadLock() -> Bool { pthread_rwlock_tryrdlock(rw) == 0 }
    @inline(__always) public func unlock() { pthread_rwlock_unlock(rw) }
}

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
public final class Locked<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: consuming Value) {
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
    public func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` if the lock is free right now; nil (and `body` not run) otherwise.
    public func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
