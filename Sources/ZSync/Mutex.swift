import Glibc

// pthread mutexes shared by every layer.
//
// Not Synchronization.Mutex: on Linux it is a priority-inheritance futex, and when it is
// contended the kernel hands the lock to the waiter without a user-space atomic that
// ThreadSanitizer can see, so every contended `Mutex` shows up as a data race under
// `--sanitize=thread` (reproduced with Swift 6.3.1: four threads incrementing a counter
// inside `Mutex.withLock` give the exact total and a TSan "Swift access race"). TSan
// intercepts `pthread_mutex_*`, so with these locks the Concurrent suite checks our code,
// not the lock. A pthread mutex may sleep, as the spec's per-connection locks may.
//
// As NIOLock: one allocation per lock (the mutex is the header of a ManagedBuffer whose one
// element is the guarded value, so it never moves), and debug builds use error-checking
// mutexes, so unlocking a mutex this thread does not hold, or locking it twice, traps.

/// The one allocation behind a `PThreadMutex` or a `Locked`: the mutex, then the value.
final class MutexStorage<Value: ~Copyable>: ManagedBuffer<pthread_mutex_t, Value> {
    static func make(_ value: consuming Value) -> MutexStorage<Value> {
        let storage = unsafeDowncast(
            MutexStorage<Value>.create(minimumCapacity: 1) { _ in pthread_mutex_t() }, to: MutexStorage<Value>.self)
        var pending = Optional(value)
        storage.withUnsafeMutablePointers { mutex, element in
            element.initialize(to: pending.take()!)
            var attributes = pthread_mutexattr_t()
            checked(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
            #if DEBUG
                checked(
                    pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
            #endif
            checked(pthread_mutex_init(mutex, &attributes), "pthread_mutex_init")
            checked(pthread_mutexattr_destroy(&attributes), "pthread_mutexattr_destroy")
        }
        return storage
    }

    deinit {
        withUnsafeMutablePointers { mutex, element in
            element.deinitialize(count: 1)
            checked(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        }
    }

    @inline(__always) func lock() {
        withUnsafeMutablePointerToHeader { checked(pthread_mutex_lock($0), "pthread_mutex_lock") }
    }

    @inline(__always) func tryLock() -> Bool {
        withUnsafeMutablePointerToHeader { checkedTry(pthread_mutex_trylock($0), "pthread_mutex_trylock") }
    }

    @inline(__always) func unlock() {
        withUnsafeMutablePointerToHeader { checked(pthread_mutex_unlock($0), "pthread_mutex_unlock") }
    }
}

/// A pthread mutex guarding no value of its own (waited on with a `PThreadCondition`).
/// A reference: copies share the one mutex.
public struct PThreadMutex: @unchecked Sendable {
    // `@unchecked Sendable`: the storage holds only the mutex, which is made for sharing.
    let storage = MutexStorage<Void>.make(())

    public init() {}

    @inline(__always) public func lock() { storage.lock() }
    @inline(__always) public func unlock() { storage.unlock() }

    @inline(__always) public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A value behind its own pthread mutex. A reference: copies share the value and the mutex.
///
/// `@unchecked Sendable` is sound because the value is only reachable through `withLock` and
/// `withLockIfAvailable`, which hold the mutex for the whole access and never let the `inout`
/// reference escape the closure.
public struct Locked<Value: ~Copyable>: @unchecked Sendable {
    private let storage: MutexStorage<Value>

    public init(_ value: consuming Value) { storage = .make(value) }

    /// Runs `body` with the lock held, sleeping until it is free.
    @inline(__always)
    public func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        storage.lock()
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(&value.pointee) }
    }

    /// Runs `body` if the lock is free right now; nil (and `body` not run) otherwise.
    public func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard storage.tryLock() else { return nil }
        defer { storage.unlock() }
        return try storage.withUnsafeMutablePointerToElements { (value) throws(E) -> R in try body(&value.pointee) }
    }
}
