import Glibc

/// The one allocation behind a `PThreadRWLock` or an `RWLocked`: the lock, then the value.
final class RWLockStorage<Value>: ManagedBuffer<pthread_rwlock_t, Value> {
    static func make(_ value: Value) -> RWLockStorage<Value> {
        let storage = unsafeDowncast(
            RWLockStorage<Value>.create(minimumCapacity: 1) { _ in pthread_rwlock_t() }, to: RWLockStorage<Value>.self)
        storage.withUnsafeMutablePointers { lock, element in
            element.initialize(to: value)
            checked(pthread_rwlock_init(lock, nil), "pthread_rwlock_init")
        }
        return storage
    }

    deinit {
        withUnsafeMutablePointers { lock, element in
            element.deinitialize(count: 1)
            checked(pthread_rwlock_destroy(lock), "pthread_rwlock_destroy")
        }
    }

    @inline(__always) func readLock() {
        withUnsafeMutablePointerToHeader { checked(pthread_rwlock_rdlock($0), "pthread_rwlock_rdlock") }
    }

    @inline(__always) func writeLock() {
        withUnsafeMutablePointerToHeader { checked(pthread_rwlock_wrlock($0), "pthread_rwlock_wrlock") }
    }

    @inline(__always) func unlock() {
        withUnsafeMutablePointerToHeader { checked(pthread_rwlock_unlock($0), "pthread_rwlock_unlock") }
    }

    @inline(__always) func tryReadLock() -> Bool {
        withUnsafeMutablePointerToHeader { checkedTry(pthread_rwlock_tryrdlock($0), "pthread_rwlock_tryrdlock") }
    }

    @inline(__always) func tryWriteLock() -> Bool {
        withUnsafeMutablePointerToHeader { checkedTry(pthread_rwlock_trywrlock($0), "pthread_rwlock_trywrlock") }
    }

    /// Takes the lock for writing, waiting `seconds` at most.
    func writeLock(waitingAtMost seconds: Double) -> Bool {
        // pthread_rwlock_clockwrlock (a monotonic deadline) needs _GNU_SOURCE, which Glibc's
        // module does not define; a wall-clock step during so short a wait only shortens or
        // lengthens that one wait.
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var deadline = now.adding(seconds: seconds)
        let rc = withUnsafeMutablePointerToHeader { pthread_rwlock_timedwrlock($0, &deadline) }
        precondition(rc == 0 || rc == ETIMEDOUT, "pthread_rwlock_timedwrlock failed with error \(rc)")
        return rc == 0
    }
}

/// A pthread reader/writer lock. A reference: copies share the one lock.
///
/// Readers may sleep while they hold it; glibc's default policy lets new readers
/// in while a writer waits, so a reader that nests another read never deadlocks.
public struct PThreadRWLock: @unchecked Sendable {
    // `@unchecked Sendable`: the storage holds only the lock, which is made for sharing.
    private let storage = RWLockStorage<Void>.make(())

    public init() {}

    @inline(__always) public func readLock() { storage.readLock() }
    @inline(__always) public func writeLock() { storage.writeLock() }
    @inline(__always) public func unlock() { storage.unlock() }
}

/// A value behind a pthread reader/writer lock: many readers at once, or one writer.
/// A reference: copies share the value and the lock. As `PThreadRWLock`, readers may sleep.
///
/// `@unchecked Sendable` is sound because the value is only reachable inside the closures
/// below, with the lock held for the whole access, and never escapes them.
public struct RWLocked<Value>: @unchecked Sendable {
    private let storage: RWLockStorage<Value>

    public init(_ value: Value) { storage = .make(value) }

    /// Runs `body` with the lock held for reading.
    @inline(__always)
    public func read<R, E: Error>(_ body: (borrowing Value) throws(E) -> R) throws(E) -> R {
        storage.readLock()
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(value.pointee) }
    }

    /// Runs `body` if the lock can be held for reading right now (no writer holds it); nil otherwise.
    @inline(__always)
    public func readIfAvailable<R, E: Error>(_ body: (borrowing Value) throws(E) -> R) throws(E) -> R? {
        guard storage.tryReadLock() else { return nil }
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(value.pointee) }
    }

    /// Runs `body` with the lock held for writing, waiting as long as it takes.
    public func write<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        storage.writeLock()
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(&value.pointee) }
    }

    /// Runs `body` with the lock held for writing if it can be taken within `seconds`;
    /// nil (and `body` not run) otherwise.
    public func write<R, E: Error>(waitingAtMost seconds: Double, _ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard storage.writeLock(waitingAtMost: seconds) else { return nil }
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(&value.pointee) }
    }
}
