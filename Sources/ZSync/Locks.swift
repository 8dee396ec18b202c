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
    @inline(__always) public func unlock() { pthread_rwlock_unlock(rw) }
}

/// A value behind a pthread mutex: `Synchronization.Mutex`'s shape, visible to ThreadSanitizer.
public final class Locked<Value>: @unchecked Sendable {
    private let mutex = PThreadMutex()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the value, holding the lock.
    @inline(__always)
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&value)
    }

    /// Runs `body` with the value if the lock is free right now; nil otherwise.
    @inline(__always)
    public func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard mutex.tryLock() else { return nil }
        defer { mutex.unlock() }
        return try body(&value)
    }
}
