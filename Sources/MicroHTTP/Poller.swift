import CLinux
import Glibc
import Synchronization
import ZSync

/// One polling thread: its own epoll set (edge-triggered) over the connections it was
/// given, which it reads, parses and answers; offloaded requests come back through `resume`.
///
/// `@unchecked Sendable`: `inbox` is locked and `epoll.wake()` any thread's; everything else is
/// touched only on the poller's thread (and by `stop` after joining it).
final class Poller: @unchecked Sendable {
    private struct Inbox {
        var adopted: [Int32] = []
        var resumed: [Connection] = []
        var stopping = false
    }

    /// The server core owns its pollers and stops them before it goes.
    unowned(unsafe) let core: ServerCore
    private let epoll = WakeableEpoll()
    private let inbox = Locked(Inbox())
    private var connections: [Int32: Connection] = [:]
    private var thread = pthread_t()
    /// Requests this poller handed to the handler and has not answered yet.
    let inFlight = Atomic<Int>(0)
    /// This thread's `Date` line, refreshed once per loop.
    private(set) var date = DateLine()

    init(core: ServerCore) {
        self.core = core
        thread = PThread.spawn { [self] in run() }
    }

    /// Takes over a connected socket (non-blocking); any thread.
    func adopt(_ fd: Int32) {
        core.connections.add(1, ordering: .relaxed)
        inbox.withLock { $0.adopted.append(fd) }
        epoll.wake()
    }

    /// Queues a connection whose worker stored its reply; any thread.
    func resume(_ connection: Connection) {
        inbox.withLock { $0.resumed.append(connection) }
        epoll.wake()
    }

    /// Closes every connection and ends the thread.
    func stop() {
        inbox.withLock { $0.stopping = true }
        epoll.wake()
        PThread.join(thread)
        for fd in inbox.withLock({ $0.adopted }) {
            close(fd)
            core.connections.subtract(1, ordering: .relaxed)
        }
        epoll.close()
    }

    /// A connection closed its socket: it leaves the set (closing removed it from epoll).
    func forget(_ connection: Connection) {
        if connections.removeValue(forKey: connection.fd) != nil { core.connections.subtract(1, ordering: .relaxed) }
    }

    private func run() {
        let capacity = 128
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        var lastSweep = MonotonicClock.nanoseconds()
        while true {
            let n = epoll_wait(epoll.fd, events, Int32(capacity), connections.isEmpty ? -1 : Self.sweepMilliseconds)
            if n < 0 && errno != EINTR { preconditionFailure("epoll_wait: \(errno)") }
            date.refresh()
            for i in 0..<max(0, Int(n)) {
                // The eventfd's data is 0; a connection's is the connection (retained by `connections`).
                if let raw = events[i].data.ptr {
                    Unmanaged<Connection>.fromOpaque(raw).takeUnretainedValue().handle(events[i].events)
                } else {
                    guard takeInbox() else {
                        closeAll()
                        return
                    }
                }
            }
            let now = MonotonicClock.nanoseconds()
            if now - lastSweep >= UInt64(Self.sweepMilliseconds) * 1_000_000 {
                lastSweep = now
                for connection in Array(connections.values) { connection.checkDeadlines(now: now) }
            }
        }
    }

    private static let sweepMilliseconds: Int32 = 100

    /// Adopts new connections and sends the replies workers handed back; false once stopping.
    private func takeInbox() -> Bool {
        epoll.clearWake()
        let taken = inbox.withLock { box in
            defer { (box.adopted, box.resumed) = ([], []) }
            return (box.adopted, box.resumed, box.stopping)
        }
        // Replies first: at shutdown the last offloaded ones still go out (with `Connection: close`).
        for connection in taken.1 { connection.resumed() }
        guard !taken.2 else {
            inbox.withLock { $0.adopted += taken.0 }
            return false
        }
        for fd in taken.0 {
            let connection = Connection(fd: fd, poller: self)
            connections[fd] = connection
            // Edge-triggered: one event per arrival; a socket that already holds bytes is
            // reported at once. The event's data is the connection.
            let data = UInt64(UInt(bitPattern: Unmanaged.passUnretained(connection).toOpaque()))
            let events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
            if !epoll.add(fd, events: events, data: data) { connection.close() }
        }
        return true
    }

    private func closeAll() {
        for connection in Array(connections.values) { connection.close() }
    }
}
