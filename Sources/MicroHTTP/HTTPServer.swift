import Glibc
import ZSync

/// An HTTP/1.1 server: a front door that accepts, polling threads that read, parse and answer
/// (inline requests on them), and workers for slow requests.
public final class HTTPServer: Sendable {
    /// The port it listens on (the picked one when the config said 0).
    public let port: UInt16
    private let core: ServerCore
    private let graceNanos: UInt64
    /// The front door that accepts connections, until `stop()` takes it.
    private let running: Locked<FrontDoor?>

    /// Binds and starts serving; `onRequestCompleted` runs on the polling thread after each request.
    public init(
        config: ServerConfig, handler: any HTTPHandler,
        onRequestCompleted: (@Sendable (RequestOutcome) -> Void)? = nil
    ) throws(ServerError) {
        let listener: (fd: Int32, port: UInt16, ipv6: Bool)
        do throws(ListenError) {
            listener = try ListenSocket.open(host: config.host, port: config.port, backlog: config.listenBacklog, nonBlocking: true)
        } catch {
            throw .listen(error)
        }
        let core = ServerCore(config: config, handler: handler, observer: onRequestCompleted)
        self.core = core
        port = listener.port
        graceNanos = UInt64(max(0, config.shutdownGraceSeconds) * 1e9)
        running = Locked(FrontDoor(listenFD: listener.fd, core: core, config: config))
    }

    deinit { stop() }

    /// Open connections.
    package var activeConnections: Int { core.connections.load(ordering: .relaxed) }

    /// Requests running on a worker.
    package var suspendedRequests: Int { core.lifecycle.withLock { $0.suspended } }

    /// Stops accepting, lets in-flight requests finish (up to the grace period; offloaded ones
    /// always finish), then closes the connections and stops the workers. Idempotent.
    public func stop() {
        guard
            let door = running.withLock({ state in
                defer { state = nil }; return state
            })
        else { return }
        // No new connections from here on (the front door owns the listening socket).
        door.stop()
        core.draining.store(true, ordering: .sequentiallyConsistent)
        core.lifecycle.wait(
            until: { [core] _ in core.inFlight == 0 },
            deadline: PThreadCondition.deadline(after: Double(graceNanos) / 1e9))
        // No suspension may start from here on, and every one still running must hand back first.
        core.lifecycle.withLock { $0.closed = true }
        core.lifecycle.wait(until: { $0.suspended == 0 })
        core.stop()
    }
}
