import CLinux
import Glibc
import ZSync

/// Accepts connections and gives each to a polling thread, which reads, checks and times
/// every head, the first included (`Connection`).
///
/// It stops accepting while `connectionLimit` connections are open (the rest wait in the
/// backlog) and, out of descriptors, pauses for 50 ms instead of spinning.
///
/// `@unchecked Sendable`: everything but `epoll.wake()` is touched only by the front door's thread
/// (and by `init`/`stop` before it starts and after it is joined).
final class FrontDoor: @unchecked Sendable {
    private let listenFD: Int32
    private let epoll = WakeableEpoll()
    private let core: ServerCore
    private let connectionLimit: Int
    private var listening = false
    private var thread = pthread_t()

    /// Starts serving `listenFD` (which it now owns) for `core`'s polling threads.
    init(listenFD: Int32, core: ServerCore, config: ServerConfig) {
        self.listenFD = listenFD
        self.core = core
        connectionLimit = max(1, config.connectionLimit)
        startListening()
        thread = PThread.spawn { [self] in run() }
    }

    /// Stops accepting and closes the listening socket.
    func stop() {
        epoll.wake()
        PThread.join(thread)
        close(listenFD)
        epoll.close()
    }

    private func startListening() {
        guard !listening else { return }
        precondition(epoll.add(listenFD, events: EPOLLIN.rawValue, data: 1), "epoll_ctl ADD: \(errno)")
        listening = true
    }

    private func stopListening() {
        guard listening else { return }
        epoll.remove(listenFD)
        listening = false
    }

    /// Connection slots left: the limit minus those being served.
    private var slotsLeft: Int { connectionLimit - core.connections.load(ordering: .relaxed) }

    private func run() {
        var event = epoll_event()
        while true {
            // While not listening, look again every 50 ms for a free slot or descriptor.
            let n = epoll_wait(epoll.fd, &event, 1, listening ? -1 : 50)
            if n < 0 && errno != EINTR { preconditionFailure("epoll_wait: \(errno)") }
            if n > 0 && event.data.u64 == 0 { return }
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
