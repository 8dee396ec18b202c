import Glibc

// pthread locks with stable addresses, for the allocator and the device layer above it.

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
