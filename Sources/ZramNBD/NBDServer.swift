import Glibc
import Synchronization
import ZSync
import ZramDevice

/// How an `NBDServer` listens and how much one client may ask for.
public struct NBDServerConfig: Sendable {
    public var host: String
    /// 0 picks a free port (see `NBDServer.port`).
    public var port: UInt16
    /// Threads serving requests that a connection hands off (see `docs/NBD.md`).
    public var workers: Int
    /// Connections open at once; more are closed at accept.
    public var maxConnections = 256
    /// The largest READ or WRITE payload (the advertised maximum block size); a WRITE
    /// announcing more closes the connection before anything is allocated.
    public var maxPayloadBytes = 32 << 20
    /// Requests one connection may have in flight; beyond it the connection stops reading.
    public var maxInFlight = 64
    /// Requests up to this length run on their connection's thread; longer ones go to the worker
    /// pool when more requests are waiting behind them.
    public var inlineBytes = 128 << 10
    /// READs and WRITEs longer than this are cut into parts of this size that run on several threads.
    package var splitBytes = 256 << 10
    /// Seconds a client may take for each step of the handshake.
    public var handshakeTimeoutSeconds: Int32 = 30

    public init(host: String = "127.0.0.1", port: UInt16 = 10809, workers: Int = 2) {
        self.host = host
        self.port = port
        self.workers = workers
    }
}

/// The NBD front end: every device of the registry is an export named after it (`zram0`, …),
/// looked up at each handshake, so `hot_add` and `hot_remove` show at once.
///
/// One thread accepts; each connection has its own thread running its handshake and a
/// poll loop over its socket, which parses requests and runs a request inline only when it
/// is the connection's only one; otherwise requests go to a shared worker pool, whose
/// threads send the reply themselves (non-blocking) and leave any unsent rest to the
/// connection's loop. No thread that another connection waits on ever compresses,
/// decompresses or touches SQLite.
public final class NBDServer: @unchecked Sendable {
    public let config: NBDServerConfig
    public let metrics = NBDMetrics()
    let registry: DeviceRegistry
    let queue: WorkerPool
    private let listenFD: Int32
    private let stopFD: Int32
    private let stopReadFD: Int32
    /// The port bound (the configured one, or the one the kernel picked for port 0).
    public let port: UInt16
    /// Every connection's thread removes it when it ends (`stop` waits for that).
    private let connections = Watched<[ObjectIdentifier: NBDConnection]>([:])
    private var acceptThread: pthread_t?
    private let stopped = Atomic<Bool>(false)

    /// Binds and starts serving.
    /// - Throws: `NBDServerError` when the address is not an IP literal or cannot be bound.
    public init(config: NBDServerConfig, registry: DeviceRegistry) throws(NBDServerError) {
        self.config = config
        self.registry = registry
        do throws(ListenError) {
            (listenFD, port, _) = try ListenSocket.open(host: config.host, port: config.port, backlog: 128, nonBlocking: false)
        } catch {
            throw NBDServerError("cannot listen on \(config.host):\(config.port): \(error)")
        }
        var ends: [Int32] = [0, 0]
        guard makePipe(&ends, nonBlocking: false) else {
            close(listenFD)
            throw NBDServerError("pipe: \(String(cString: strerror(errno)))")
        }
        stopReadFD = ends[0]
        stopFD = ends[1]
        queue = WorkerPool(threads: config.workers, capacity: nil)
        acceptThread = PThread.spawn { [self] in acceptLoop() }
    }

    deinit {
        close(stopFD)
        close(stopReadFD)
    }

    /// Stops accepting, closes every connection once its requests in flight are answered, joins the threads.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt8 = 1
        _ = write(stopFD, &one, 1)
        if let acceptThread { PThread.join(acceptThread) }
        close(listenFD)
        for connection in connections.withLock({ Array($0.values) }) { connection.abort() }
        // Connections answer what is in flight; a client that stops reading gets 5 s.
        if !connections.wait(until: { $0.isEmpty }, deadline: PThreadCondition.deadline(after: 5)) {
            for connection in connections.withLock({ Array($0.values) }) { connection.abort(hard: true) }
            connections.wait(until: { $0.isEmpty })
        }
        queue.shutdown()
    }

    private func acceptLoop() {
        var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: stopReadFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let n = poll(&fds, 2, -1)
            if n < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { return }
            guard fds[0].revents & Int16(POLLIN) != 0 else { continue }
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0, setFlags(fd, nonBlocking: true) else {
                if fd >= 0 { close(fd) }
                // EMFILE and friends: back off instead of spinning.
                if errno != EAGAIN && errno != EINTR && errno != ECONNABORTED { usleep(10_000) }
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            let admitted = connections.withLock { connections -> NBDConnection? in
                guard connections.count < config.maxConnections else { return nil }
                guard let connection = NBDConnection(fd: fd, server: self) else { return nil }
                connections[ObjectIdentifier(connection)] = connection
                return connection
            }
            guard let connection = admitted else {
                metrics.refusedConnections.add(1, ordering: .relaxed)
                close(fd)
                continue
            }
            metrics.openConnections.add(1, ordering: .relaxed)
            PThread.detach { [self] in
                connection.run()
                metrics.openConnections.subtract(1, ordering: .relaxed)
                // A finished client gives back what its large requests left in malloc.
                Heap.trim()
                connections.withLock { _ = $0.removeValue(forKey: ObjectIdentifier(connection)) }
            }
        }
    }

    /// The export called `name` (`zramN`; the empty name is the lowest-numbered device).
    func device(named name: String) -> ZramDevice? {
        if name.isEmpty { return registry.all.first }
        guard name.hasPrefix("zram"), let id = Int(name.dropFirst(4)), String(id) == name.dropFirst(4) else { return nil }
        return registry.device(id)
    }
}

/// Why the NBD server could not start.
public struct NBDServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Marks `fd` close-on-exec and, when asked, non-blocking.
func setFlags(_ fd: Int32, nonBlocking: Bool) -> Bool {
    guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else { return false }
    return !nonBlocking || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == 0
}

/// A close-on-exec pipe (`ends[0]` reads, `ends[1]` writes).
func makePipe(_ ends: inout [Int32], nonBlocking: Bool) -> Bool {
    guard pipe(&ends) == 0 else { return false }
    guard setFlags(ends[0], nonBlocking: nonBlocking), setFlags(ends[1], nonBlocking: nonBlocking) else {
        close(ends[0])
        close(ends[1])
        return false
    }
    return true
}
