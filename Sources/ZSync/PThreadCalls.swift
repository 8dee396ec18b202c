import Glibc

// As swift-nio's NIOLock: every pthread call's result is checked (a lock that hides a failed
// call hides the bug it exists to catch).

/// Traps when a pthread call failed.
@inline(__always)
package func checked(_ rc: Int32, _ call: StaticString) {
    precondition(rc == 0, "\(call) failed with error \(rc)")
}

/// `true` when a try-lock call took the lock, `false` when it was busy; traps on anything else.
@inline(__always)
package func checkedTry(_ rc: Int32, _ call: StaticString) -> Bool {
    precondition(rc == 0 || rc == EBUSY, "\(call) failed with error \(rc)")
    return rc == 0
}
