import Glibc

/// The one allocation behind a `PThreadRWLock`.
final class RWLockStorage: ManagedBuffer<pthread_rwlock_t, Void> {
    static func make() -> RWLockStorage {
        let storage = unsafeDowncast(
            RWLockStorage.create(minimumCapacity: 0) { _ in pthread_rwlock_t() }, to: RWLockStorage.self)
        storage.withUnsafeMutablePointerToHeader { checked(pthread_rwlock_init($0, nil), "pthread_rwlock_init") }
        return storage
    }

    deinit { withUnsafeMutablePointerToHeader { checked(pthread_rwlock_destroy($0), "pthread_rwlock_destroy") } }
}

/// A pthread reader/writer lock. A reference: copies share the one lock.
///
/// Readers may sleep while they hold it; glibc's default policy lets new readers
/// in while a writer waits, so a reader that nests another read never deadlocks.
public struct PThreadRWLock: @unchecked Sendable {
    // `@unchecked Sendable`: the storage holds only the lock, which is made for sharing.
    private let storage = RWLockStorage.make()

    public init() {}

    @inline(__always) public func readLock() {
        storage.withUnsafeMutablePointerToHeader { checked(pthread_rwlock_rdlock($0), "pthread_rwlock_rdlock") }
    }

    @inline(__always) public func writeLock() {
        storage.withUnsafeMutablePointerToHeader { checked(pthread_rwlock_wrlock($0), "pthread_rwlock_wrlock") }
    }

    @inline(__always) public func unlock() {
        storage.withUnsafeMutablePointerToHeader { checked(pthread_rwlock_unlock($0), "pthread_rwlock_unlock") }
    }

    /// Takes the lock for writing only if no one holds it.
    @inline(__always) public func tryWriteLock() -> Bool {
        storage.withUnsafeMutablePointerToHeader { checkedTry(pthread_rwlock_trywrlock($0), "pthread_rwlock_trywrlock") }
    }

    /// Takes the lock for reading only if no writer holds it.
    @inline(__always) public func tryReadLock() -> Bool {
        storage.withUnsafeMutablePointerToHeader { checkedTry(pthread_rwlock_tryrdlock($0), "pthread_rwlock_tryrdlock") }
    }
}
