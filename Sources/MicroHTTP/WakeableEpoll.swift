import CLinux
import Glibc

/// An epoll set with an eventfd in it, whose event carries data 0: any thread `wake()`s
/// the one waiting on the set. The front door and every polling thread have one.
struct WakeableEpoll: Sendable {
    let fd: Int32
    private let wakeFD: Int32

    init() {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(fd >= 0 && wakeFD >= 0, "epoll_create1/eventfd: \(errno)")
        precondition(add(wakeFD, events: EPOLLIN.rawValue, data: 0), "epoll_ctl ADD: \(errno)")
    }

    /// Watches `socket` for `events`; its events carry `data` (not 0).
    func add(_ socket: Int32, events: UInt32, data: UInt64) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.u64 = data
        return epoll_ctl(fd, EPOLL_CTL_ADD, socket, &event) == 0
    }

    func remove(_ socket: Int32) { epoll_ctl(fd, EPOLL_CTL_DEL, socket, nil) }

    /// Makes the waiter's `epoll_wait` return with the data-0 event.
    func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Clears the wake-up, after the data-0 event was seen.
    func clearWake() {
        var count: UInt64 = 0
        _ = read(wakeFD, &count, 8)
    }

    func close() {
        Glibc.close(fd)
        Glibc.close(wakeFD)
    }
}
