import Glibc

/// The one allocation behind a `PThreadCondition`.
final class ConditionStorage: ManagedBuffer<pthread_cond_t, Void> {
    static func make() -> ConditionStorage {
        let storage = unsafeDowncast(
            ConditionStorage.create(minimumCapacity: 0) { _ in pthread_cond_t() }, to: ConditionStorage.self)
        storage.withUnsafeMutablePointerToHeader { condition in
            var attributes = pthread_condattr_t()
            checked(pthread_condattr_init(&attributes), "pthread_condattr_init")
            // Timed waits measure monotonic time, immune to clock changes.
            checked(pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC), "pthread_condattr_setclock")
            checked(pthread_cond_init(condition, &attributes), "pthread_cond_init")
            checked(pthread_condattr_destroy(&attributes), "pthread_condattr_destroy")
        }
        return storage
    }

    deinit { withUnsafeMutablePointerToHeader { checked(pthread_cond_destroy($0), "pthread_cond_destroy") } }
}

/// A condition variable used with one `PThreadMutex`, whose holder waits on it.
/// A reference: copies share the one condition.
public struct PThreadCondition: @unchecked Sendable {
    // `@unchecked Sendable`: the storage holds only the condition, which is made for sharing.
    private let storage = ConditionStorage.make()

    public init() {}

    /// Releases `mutex` (which the caller holds), sleeps until woken, and takes it again.
    /// Wake-ups may be spurious: wait in a loop on the condition you need.
    public func wait(_ mutex: PThreadMutex) {
        storage.withUnsafeMutablePointerToHeader { condition in
            mutex.storage.withUnsafeMutablePointerToHeader {
                checked(pthread_cond_wait(condition, $0), "pthread_cond_wait")
            }
        }
    }

    /// As `wait`, but returns by `deadline` (CLOCK_MONOTONIC) at the latest.
    /// - Returns: false when the deadline passed.
    @discardableResult
    public func wait(_ mutex: PThreadMutex, until deadline: timespec) -> Bool {
        var deadline = deadline
        let rc = storage.withUnsafeMutablePointerToHeader { condition in
            mutex.storage.withUnsafeMutablePointerToHeader { pthread_cond_timedwait(condition, $0, &deadline) }
        }
        precondition(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait failed with error \(rc)")
        return rc == 0
    }

    /// Wakes one waiter.
    public func signal() {
        storage.withUnsafeMutablePointerToHeader { checked(pthread_cond_signal($0), "pthread_cond_signal") }
    }

    /// Wakes every waiter.
    public func broadcast() {
        storage.withUnsafeMutablePointerToHeader { checked(pthread_cond_broadcast($0), "pthread_cond_broadcast") }
    }

    /// The CLOCK_MONOTONIC time `seconds` from now, for `wait(_:until:)`.
    public static func deadline(after seconds: Double) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.adding(seconds: seconds)
    }
}

extension timespec {
    /// This time plus `seconds`.
    func adding(seconds: Double) -> timespec {
        let nanos = tv_nsec + Int(seconds.truncatingRemainder(dividingBy: 1) * 1e9)
        return timespec(tv_sec: tv_sec + Int(seconds) + nanos / 1_000_000_000, tv_nsec: nanos % 1_000_000_000)
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
