import Glibc

// pthread locks with stable addresses, shared by every layer.
//
// Not Synchronization.Mutex: on Linux its lock lives in the prebuilt runtime, where
// ThreadSanitizer cannot see it, so every access it guards is reported as a race.
// pthread calls are intercepted by ThreadSanitizer and cost the same uncontended.
//
// As swift-nio's NIOLock: every pthread call's result is checked (a lock that hides a
// failed call hides the bug it exists to catch), and debug builds use error-checking
// mutexes, so unlocking a mutex this thread does not hold, or locking it twice, traps.

/// Traps when a pthread call failed.
@inline(__always)
func checked(_ rc: Int32, _ call: StaticString) {
    precondition(rc == 0, "\(call) failed with error \(rc)")
}

/// `true` when a try-lock call took the lock, `false` when it was busy; traps on anything else.
@inline(__always)
func checkedTry(_ rc: Int32, _ call: StaticString) -> Bool {
    precondition(rc == 0 || rc == EBUSY, "\(call) failed with error \(rc)")
    return rc == 0
}

/// Initialises a pthread mutex: error-checking in debug builds, normal in release.
func initialiseMutex(_ mutex: UnsafeMutablePointer<pthread_mutex_t>) {
    mutex.initialize(to: pthread_mutex_t())
    var attributes = pthread_mutexattr_t()
    checked(pthread_mutexattr_init(&attributes), "pthread_mutexattr_init")
    #if DEBUG
        checked(pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ERRORCHECK)), "pthread_mutexattr_settype")
    #endif
    checked(pthread_mutex_init(mutex, &attributes), "pthread_mutex_init")
    checked(pthread_mutexattr_destroy(&attributes), "pthread_mutexattr_destroy")
}

/// A pthread mutex at a stable heap address (Swift values move; pthread objects must not).
public final class PThreadMutex: @unchecked Sendable {
    let mutex: UnsafeMutablePointer<pthread_mutex_t>

    public init() {
        mutex = .allocate(capacity: 1)
        initialiseMutex(mutex)
    }

    deinit {
        checked(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        mutex.deallocate()
    }

    @inline(__always) public func lock() { checked(pthread_mutex_lock(mutex), "pthread_mutex_lock") }
    @inline(__always) public func unlock() { checked(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }

    @inline(__always) public func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// A condition variable used with one `PThreadMutex`, whose holder waits on it.
public final class PThreadCondition: @unchecked Sendable {
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    public init() {
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        checked(pthread_condattr_init(&attributes), "pthread_condattr_init")
        // Timed waits measure monotonic time, immune to clock changes.
        checked(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
        checked(pthread_cond_init(condition, &attributes), "pthread_cond_init")
        checked(pthread_condattr_destroy(&attributes), "pthread_condattr_destroy")
    }

    deinit {
        checked(pthread_cond_destroy(condition), "pthread_cond_destroy")
        condition.deallocate()
    }

    /// Releases `mutex` (which the caller holds), sleeps until woken, and takes it again.
    /// Wake-ups may be spurious: wait in a loop on the condition you need.
    public func wait(_ mutex: PThreadMutex) {
        checked(pthread_cond_wait(condition, mutex.mutex), "pthread_cond_wait")
    }

    /// As `wait`, but returns by `deadline` (CLOCK_MONOTONIC) at the latest.
    /// - Returns: false when the deadline passed.
    @discardableResult
    public func wait(_ mutex: PThreadMutex, until deadline: timespec) -> Bool {
        var deadline = deadline
        let rc = pthread_cond_timedwait(condition, mutex.mutex, &deadline)
        precondition(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait failed with error \(rc)")
        return rc == 0
    }

    /// Wakes one waiter.
    public func signal() { checked(pthread_cond_signal(condition), "pthread_cond_signal") }
    /// Wakes every waiter.
    public func broadcast() { checked(pthread_cond_broadcast(condition), "pthread_cond_broadcast") }

    /// The CLOCK_MONOTONIC time `seconds` from now, for `wait(_:until:)`.
    public static func deadline(after seconds: Double) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let nanos = now.tv_nsec + Int(seconds.truncatingRemainder(dividingBy: 1) * 1e9)
        return timespec(tv_sec: now.tv_sec + Int(seconds) + nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
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
        checked(pthread_rwlock_init(rw, nil), "pthread_rwlock_init")
    }

    deinit {
        checked(pthread_rwlock_destroy(rw), "pthread_rwlock_destroy")
        rw.deallocate()
    }

    @inline(__always) public func readLock() { checked(pthread_rwlock_rdlock(rw), "pthread_rwlock_rdlock") }
    @inline(__always) public func writeLock() { checked(pthread_rwlock_wrlock(rw), "pthread_rwlock_wrlock") }
    @inline(__always) public func unlock() { checked(pthread_rwlock_unlock(rw), "pthread_rwlock_unlock") }
    /// Takes the lock for writing only if no one holds it.
    @inline(__always) public func tryWriteLock() -> Bool { checkedTry(pthread_rwlock_trywrlock(rw), "pthread_rwlock_trywrlock") }
    /// Takes the lock for reading only if no writer holds it.
    @inline(__always) public func tryReadLock() -> Bool { checkedTry(pthread_rwlock_tryrdlock(rw), "pthread_rwlock_tryrdlock") }
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
        initialiseMutex(mutex)
        self.value = value
    }

    deinit {
        checked(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the lock held, sleeping until it is free.
    public func withLock<R: ~Copyable, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        checked(pthread_mutex_lock(mutex), "pthread_mutex_lock")
        defer { checked(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
        return try body(&value)
    }

    /// Runs `body` if the lock is free right now; nil (and `body` not run) otherwise.
    public func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard checkedTry(pthread_mutex_trylock(mutex), "pthread_mutex_trylock") else { return nil }
        defer { checked(pthread_mutex_unlock(mutex), "pthread_mutex_unlock") }
        return try body(&value)
    }
}

/// A value behind a mutex with a condition variable: every change wakes the threads that
/// wait for the value to reach some state (no polling).
public final class Watched<Value: Sendable>: @unchecked Sendable {
    // `@unchecked Sendable`: `value` is only touched with `mutex` held.
    private let mutex = PThreadMutex()
    private let changed = PThreadCondition()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    /// Runs `body` with the lock held, then wakes the waiters (cheap when there are none).
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        mutex.lock()
        defer {
            changed.broadcast()
            mutex.unlock()
        }
        return try body(&value)
    }

    /// Sleeps until `done(value)` holds or `deadline` (CLOCK_MONOTONIC) passes, if given.
    /// - Returns: whether `done` holds.
    @discardableResult
    public func wait(until done: (Value) -> Bool, deadline: timespec? = nil) -> Bool {
        mutex.lock()
        defer { mutex.unlock() }
        while !done(value) {
            if let deadline {
                if !changed.wait(mutex, until: deadline) { return done(value) }
            } else {
                changed.wait(mutex)
            }
        }
        return true
    }
}
