import CLinux
import ZSync
import Glibc

/// Accepts connections and holds each one until its first request head is complete, then
/// hands it to a polling thread.
///
/// Here, on one thread with its own epoll set and without reading anything (`MSG_PEEK`, so
/// the polling thread still gets every byte), a connection is:
/// - answered 408 and closed when its head is not complete `headerTimeout` after accept, or
///   nothing arrived for `idleTimeout`, however the bytes trickle;
/// - closed at once when the client shuts its side before the head is complete;
/// - answered 400/414/431 and closed when its head is malformed or over the limits;
/// - otherwise handed over, with its head intact in the socket.
///
/// `@unchecked Sendable`: everything but `wakeFD` is touched only by the front door's thread
/// (and by `init`/`stop` before it starts and after it is joined).
final class FrontDoor: @unchecked Sendable {
    private struct Pending {
        let acceptedNanos: UInt64
        var lastNanos: UInt64
        var peeked: Int
    }

    private let listenFD: Int32
    private let epollFD: Int32
    private let wakeFD: Int32
    private let core: ServerCore
    private let limits: RequestHead.Limits
    private let headerTimeoutNanos: UInt64
    private let idleTimeoutNanos: UInt64
    private let connectionLimit: Int
    private let buffer: UnsafeMutableRawBufferPointer
    private var pending: [Int32: Pending] = [:]
    private var listening = false
    private var date = DateLine()
    private var thread = pthread_t()

    /// Starts serving `listenFD` (which it now owns) for `core`'s polling threads.
    init(listenFD: Int32, core: ServerCore, config: ServerConfig) {
        self.listenFD = listenFD
        self.core = core
        limits = RequestHead.Limits(
            maxRequestLine: config.maxRequestLineBytes, maxHead: config.maxHeaderBytes, maxQueryItems: config.maxQueryItems)
        headerTimeoutNanos = UInt64(max(0.001, config.headerTimeoutSeconds) * 1e9)
        idleTimeoutNanos = UInt64(max(1, config.idleTimeoutSeconds)) * 1_000_000_000
        connectionLimit = max(1, config.connectionLimit)
        buffer = .allocate(byteCount: max(config.maxHeaderBytes, config.maxRequestLineBytes) + 1, alignment: 16)
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(epollFD >= 0 && wakeFD >= 0, "epoll_create1/eventfd: \(errno)")
        watch(wakeFD, events: EPOLLIN.rawValue)
        startListening()
        thread = PThread.spawn { [self] in run() }
    }

    deinit { buffer.deallocate() }

    /// Stops accepting, closes the connections not handed over yet and the listening socket.
    func stop() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        PThread.join(thread)
        for fd in pending.keys { close(fd) }
        pending = [:]
        core.waiting.store(0, ordering: .relaxed)
        close(listenFD)
        close(epollFD)
        close(wakeFD)
    }

    private func watch(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        let rc = epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &event)
        precondition(rc == 0 || errno == EEXIST, "epoll_ctl ADD: \(errno)")
    }

    private func startListening() {
        guard !listening else { return }
        watch(listenFD, events: EPOLLIN.rawValue)
        listening = true
    }

    private func stopListening() {
        guard listening else { return }
        epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
        listening = false
    }

    /// Connection slots left: the limit minus those held here and those being served.
    private var slotsLeft: Int { connectionLimit - pending.count - core.connections.load(ordering: .relaxed) }

    private func run() {
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while true {
            // Deadlines are checked every 50 ms while anything waits; otherwise sleep until an event.
            let timeout: Int32 = pending.isEmpty && listening ? -1 : 50
            let n = epoll_wait(epollFD, events, Int32(capacity), timeout)
            if n < 0 && errno != EINTR { preconditionFailure("epoll_wait: \(errno)") }
            for i in 0..<max(0, Int(n)) {
                let fd = events[i].data.fd
                if fd == wakeFD { return }
                if fd == listenFD { acceptAll() } else { inspect(fd, events[i].events) }
            }
            sweep()
            if !listening && slotsLeft > 0 { startListening() }
        }
    }

    private func acceptAll() {
        while slotsLeft > 0 {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                // Out of descriptors: pause, and try again on the next round (50 ms).
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { stopListening() }
                return
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let now = MonotonicClock.nanoseconds()
            pending[fd] = Pending(acceptedNanos: now, lastNanos: now, peeked: 0)
            core.waiting.store(pending.count, ordering: .relaxed)
            // Edge-triggered: an event for each arrival, since peeking leaves the bytes unread.
            // Registering a socket that already has data reports it at once.
            watch(fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue)
        }
        stopListening()
    }

    private func inspect(_ fd: Int32, _ events: UInt32) {
        guard pending[fd] != nil else { return }
        let closedByPeer = events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0
        let n = recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_PEEK | MSG_DONTWAIT))
        if n <= 0 {
            if n == 0 || errno != EAGAIN && errno != EINTR || closedByPeer { drop(fd) }
            return
        }
        switch RequestHead.inspect(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), limits) {
        case .complete:
            handOver(fd)
        case .reject(let status, let errno, let why):
            reply(fd, status: status, errno: errno, why: why)
        case .incomplete:
            // A client that shut its side with the head unfinished will never finish it.
            if closedByPeer { drop(fd); return }
            if n > pending[fd]!.peeked {
                pending[fd]!.peeked = n
                pending[fd]!.lastNanos = MonotonicClock.nanoseconds()
            }
        }
    }

    private func handOver(_ fd: Int32) {
        guard pending.removeValue(forKey: fd) != nil else { return }
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        core.adopt(fd)
        core.waiting.store(pending.count, ordering: .relaxed)
    }

    /// Answers and closes: what was sent is read first, so closing does not reset the
    /// connection under the reply.
    private func reply(_ fd: Int32, status: Int, errno name: String, why: String) {
        for _ in 0..<8 where recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT)) > 0 {}
        let response = core.engineError(status, name, why)
        date.refresh()
        var bytes = ByteBuffer(capacity: 256)
        ResponseHead.write(
            into: &bytes, status: status, headers: response.headers, bodyCount: response.body.count, date: date, close: true)
        bytes.append(response.body.bytes)
        // Best effort: the socket is non-blocking and the reply small.
        var offset = 0
        var spins = 0
        while offset < bytes.count {
            let n = send(fd, bytes.base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EAGAIN && spins < 100 {
                spins += 1
                usleep(1000)
            } else {
                break
            }
        }
        shutdown(fd, Int32(SHUT_WR))
        drop(fd)
    }

    private func drop(_ fd: Int32) {
        guard pending.removeValue(forKey: fd) != nil else { return }
        core.waiting.store(pending.count, ordering: .relaxed)
        epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
        close(fd)
    }

    /// 408 for every connection past its header deadline or idle too long.
    private func sweep() {
        guard !pending.isEmpty else { return }
        let now = MonotonicClock.nanoseconds()
        var late: [(Int32, String)] = []
        for (fd, connection) in pending {
            if now - connection.acceptedNanos > headerTimeoutNanos {
                late.append((fd, "request head not complete within \(Double(headerTimeoutNanos) / 1e9) s"))
            } else if now - connection.lastNanos > idleTimeoutNanos {
                late.append((fd, "nothing received for \(idleTimeoutNanos / 1_000_000_000) s"))
            }
        }
        for (fd, why) in late { reply(fd, status: 408, errno: "ETIMEDOUT", why: why) }
    }
}
