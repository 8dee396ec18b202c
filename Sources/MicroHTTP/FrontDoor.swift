import CLinux
import Glibc
import ZSync

/// Accepts connections and gives each to a polling thread, which reads, checks and times
/// every head, the first included (`Connection`).
///
/// It stops accepting while `connectionLimit` connections are open (the rest wait in the
/// backlog) and, out of descriptors, pauses for 50 ms instead of spinning.
///
/// `@unchecked Sendable`: everything but `wakeFD` is touched only by the front door's thread
/// (and by `init`/`stop` before it starts and after it is joined).
final class FrontDoor: @unchecked Sendable {
    private let listenFD: Int32
    private let epollFD: Int32
    private let wakeFD: Int32
    private let core: ServerCore
    private let connectionLimit: Int
    private var listening = false
    private var thread = pthread_t()

    /// Starts serving `listenFD` (which it now owns) for `core`'s polling threads.
    init(listenFD: Int32, core: ServerCore, config: ServerConfig) {
        self.listenFD = listenFD
        self.core = core
        connectionLimit = max(1, config.connectionLimit)
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        precondition(epollFD >= 0 && wakeFD >= 0, "epoll_create1/eventfd: \(errno)")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0, "epoll_ctl ADD: \(errno)")
        startListening()
        thread = PThread.spawn { [self] in run() }
    }

    /// Stops accepting and closes the listening socket.
    func stop() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        PThread.join(thread)
        close(listenFD)
        close(epollFD)
        close(wakeFD)
    }

    private func startListening() {
        guard !listening else { return }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = listenFD
        precondition(epoll_ctl(epollFD, EPOLL_CTL_ADD, listenFD, &event) == 0, "epoll_ctl ADD: \(errno)")
        listening = true
    }

    private func stopListening() {
        guard listening else { return }
        epoll_ctl(epollFD, EPOLL_CTL_DEL, listenFD, nil)
        listening = false
    }

    /// Connection slots left: the limit minus those being served.
    private var slotsLeft: Int { connectionLimit - core.connections.load(ordering: .relaxed) }

    private func run() {
        var event = epoll_event()
        while true {
            // While not listening, look again every 50 ms for a free slot or descriptor.
            let n = epoll_wait(epollFD, &event, 1, listening ? -1 : 50)
            if n < 0 && errno != EINTR { preconditionFailure("epoll_wait: \(errno)") }
            if n > 0 && event.data.fd == wakeFD { return }
            if slotsLeft > 0 {
                startListening()
                acceptAll()
            }
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
            core.adopt(fd)
        }
        stopListening()
    }
}
