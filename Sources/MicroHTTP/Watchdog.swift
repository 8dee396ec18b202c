import CMicroHTTPD
import Glibc
import Synchronization
import ZSync

/// One connection libmicrohttpd serves, as the watchdog sees it.
///
/// `@unchecked Sendable`: `fd` is immutable; the rest is atomic.
final class ConnectionState: @unchecked Sendable {
    let fd: Int32
    /// When the connection started waiting for its next request head (accept, or the end of
    /// the previous request); 0 while a request is being handled.
    let waitingSince: Atomic<UInt64>
    /// Set once a request on it held a large body: when it closes, the heap is trimmed.
    let carriedLargeBody = Atomic<Bool>(false)

    init(fd: Int32) {
        self.fd = fd
        waitingSince = Atomic(MonotonicClock.nanoseconds())
    }
}

/// Bounds the time of the requests after a connection's first (which the front door bounds):
/// libmicrohttpd's own timeout is an inactivity timeout, so a keep-alive connection trickling
/// its next head, or half-closed in the middle of it, would keep its slot.
///
/// Every 250 ms, on its own thread, for each connection waiting for a head:
/// - past `idleTimeout + headerTimeout` since the previous request ended (an idle connection
///   is closed by libmicrohttpd at `idleTimeout`, so only a trickling one gets here), or
/// - shut by the client (POLLRDHUP) and still waiting after a second check,
/// its socket is `shutdown()`: libmicrohttpd's next read fails and it closes the connection.
/// Nothing is written: libmicrohttpd may be about to answer on that socket itself.
final class Watchdog: @unchecked Sendable {
    private let tracked = Locked<[ObjectIdentifier: ConnectionState]>([:])
    private let deadlineNanos: UInt64
    private let stopping = Watched(false)
    private var thread = pthread_t()
    /// Connections seen half-closed on the previous round (shut down if still waiting now).
    private var halfClosed: Set<ObjectIdentifier> = []
    /// Connections this watchdog shut down (for tests and metrics).
    let shutDowns = Atomic<Int>(0)

    init(idleTimeoutSeconds: Int, headerTimeoutSeconds: Double) {
        deadlineNanos = UInt64(max(1, idleTimeoutSeconds)) * 1_000_000_000 + UInt64(max(0.001, headerTimeoutSeconds) * 1e9)
        thread = PThread.spawn { [self] in run() }
    }

    func add(_ state: ConnectionState) { tracked.withLock { $0[ObjectIdentifier(state)] = state } }

    func remove(_ state: ConnectionState) { tracked.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(state)) } }

    func stop() {
        stopping.withLock { $0 = true }
        PThread.join(thread)
    }

    private func run() {
        while !stopping.wait(until: { $0 }, deadline: PThreadCondition.deadline(after: 0.25)) { sweep() }
    }

    private func sweep() {
        let now = MonotonicClock.nanoseconds()
        // The lock is held through the shutdowns: a connection is removed (before libmicrohttpd
        // closes its descriptor) only under it, so no descriptor here has been reused.
        tracked.withLock { states in
            var waiting: [(ObjectIdentifier, ConnectionState)] = []
            for (id, state) in states {
                let since = state.waitingSince.load(ordering: .relaxed)
                guard since != 0 else { continue }
                if now > since && now - since > deadlineNanos {
                    shutdown(state.fd, Int32(SHUT_RDWR))
                    shutDowns.add(1, ordering: .relaxed)
                } else {
                    waiting.append((id, state))
                }
            }
            guard !waiting.isEmpty else {
                halfClosed = []
                return
            }
            var polls = waiting.map { pollfd(fd: $0.1.fd, events: pollRDHUP, revents: 0) }
            guard poll(&polls, nfds_t(polls.count), 0) > 0 else {
                halfClosed = []
                return
            }
            var seen: Set<ObjectIdentifier> = []
            for (i, entry) in waiting.enumerated() where polls[i].revents & (pollRDHUP | Int16(POLLHUP | POLLERR)) != 0 {
                if halfClosed.contains(entry.0) && entry.1.waitingSince.load(ordering: .relaxed) != 0 {
                    shutdown(entry.1.fd, Int32(SHUT_RDWR))
                    shutDowns.add(1, ordering: .relaxed)
                } else {
                    seen.insert(entry.0)
                }
            }
            halfClosed = seen
        }
    }
}

/// Linux's POLLRDHUP (the peer shut its writing side), which Glibc imports only with _GNU_SOURCE.
private let pollRDHUP: Int16 = 0x2000
