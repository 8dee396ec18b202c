import CMicroHTTPD
import Glibc
import ZSync

/// An HTTP/1.1 server on libmicrohttpd: a pool of epoll threads plus workers for slow requests.
public final class HTTPServer: Sendable {
    /// The port it listens on (the picked one when the config said 0).
    public let port: UInt16
    private let core: ServerCore
    private let graceNanos: UInt64
    /// The daemon until `stop()` takes it, and the front door that accepts its connections.
    private let running: Locked<(daemon: DaemonRef, door: FrontDoor)?>

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
        guard let daemon = Self.startDaemon(config: config, ipv6: listener.ipv6, core: core) else {
            close(listener.fd)
            core.workers.shutdown()
            core.background.shutdown()
            core.watchdog.stop()
            throw .daemonStartFailed
        }
        self.core = core
        port = listener.port
        graceNanos = UInt64(max(0, config.shutdownGraceSeconds) * 1e9)
        running = Locked((DaemonRef(raw: daemon), FrontDoor(listenFD: listener.fd, daemon: daemon, core: core, config: config)))
    }

    deinit { stop() }

    /// Open connections: those libmicrohttpd serves and those waiting for a complete head.
    package var activeConnections: Int { core.connections.load(ordering: .relaxed) + core.waiting.load(ordering: .relaxed) }

    /// Requests suspended while a worker runs them.
    package var suspendedRequests: Int { core.lifecycle.withLock { $0.suspended } }

    /// Stops accepting, lets in-flight requests finish (up to the grace period; offloaded ones
    /// always finish), then stops the daemon and the workers. Idempotent.
    public func stop() {
        guard
            let (daemon, door) = running.withLock({ state in
                defer { state = nil }; return state
            })
        else { return }
        // No new connections from here on (the front door owns the listening socket).
        door.stop()
        core.draining.store(true, ordering: .sequentiallyConsistent)
        core.lifecycle.wait(
            until: { [core] _ in core.inFlight.load(ordering: .sequentiallyConsistent) == 0 },
            deadline: PThreadCondition.deadline(after: Double(graceNanos) / 1e9))
        // No suspension may start from here on, and every one still running must resume first.
        core.lifecycle.withLock { $0.closed = true }
        core.lifecycle.wait(until: { $0.suspended == 0 })
        MHD_stop_daemon(daemon.raw)
        core.workers.shutdown()
        core.background.shutdown()
        core.watchdog.stop()
    }

    private static func startDaemon(config: ServerConfig, ipv6: Bool, core: ServerCore) -> OpaquePointer? {
        let uriLog: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, OpaquePointer?) -> UnsafeMutableRawPointer? = {
            _, uri, _ in
            // Called once per request line: the raw URI still has its query, unlike `url` later.
            let query = uri.flatMap { strchr($0, Int32(UInt8(ascii: "?"))) }.map { String(cString: $0 + 1) } ?? ""
            return Unmanaged.passRetained(RequestContext(rawQuery: query)).toOpaque()
        }
        let access: MHD_AccessHandlerCallback = { cls, connection, url, method, _, upload, uploadSize, conCls in
            guard let cls, let connection, let url, let method, let uploadSize, let raw = conCls?.pointee else { return .NO }
            let core = Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue()
            let context = Unmanaged<RequestContext>.fromOpaque(raw).takeUnretainedValue()
            return core.access(context, connection, url: url, method: method, upload: upload, uploadSize: uploadSize)
        }
        let completed: MHD_RequestCompletedCallback = { cls, connection, conCls, termination in
            guard let cls, let conCls, let raw = conCls.pointee else { return }
            conCls.pointee = nil
            let context = Unmanaged<RequestContext>.fromOpaque(raw).takeRetainedValue()
            Unmanaged<ServerCore>.fromOpaque(cls).takeUnretainedValue().completed(context, connection, termination)
        }
        // Each connection's state for the watchdog lives in its socket context, from STARTED
        // to CLOSED (which libmicrohttpd reports before it closes the descriptor).
        let connectionNotice: MHD_NotifyConnectionCallback = { cls, connection, socketContext, code in
            let core = Unmanaged<ServerCore>.fromOpaque(cls!).takeUnretainedValue()
            if code == .CONNECTION_NOTIFY_STARTED {
                core.connections.add(1, ordering: .relaxed)
                guard let connection, let socketContext else { return }
                let state = ConnectionState(fd: zramd_connection_fd(connection))
                core.watchdog.add(state)
                socketContext.pointee = Unmanaged.passRetained(state).toOpaque()
            } else {
                core.connections.subtract(1, ordering: .relaxed)
                guard let socketContext, let raw = socketContext.pointee else { return }
                socketContext.pointee = nil
                let state = Unmanaged<ConnectionState>.fromOpaque(raw).takeRetainedValue()
                core.watchdog.remove(state)
                core.closed(state)
            }
        }
        // The daemon never outlives `core`: HTTPServer holds both and stops the daemon first.
        let cls = OpaquePointer(Unmanaged.passUnretained(core).toOpaque())
        // No listening socket of its own: the front door accepts and hands connections over.
        var flags =
            MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue | MHD_ALLOW_SUSPEND_RESUME.rawValue
            | MHD_USE_NO_LISTEN_SOCKET.rawValue | MHD_USE_ITC.rawValue
        if ipv6 { flags |= MHD_USE_IPv6.rawValue }
        // C varargs: unsigned int as UInt32, size_t as Int, pointers and function pointers as OpaquePointer.
        let options: [any CVarArg] = [
            MHD_OPTION.THREAD_POOL_SIZE.rawValue, UInt32(clamping: max(1, config.threadPoolSize)),
            MHD_OPTION.CONNECTION_LIMIT.rawValue, UInt32(clamping: max(1, config.connectionLimit)),
            MHD_OPTION.CONNECTION_TIMEOUT.rawValue, UInt32(clamping: max(1, config.idleTimeoutSeconds)),
            MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue, config.connectionMemoryLimit,
            // Strict: an HTTP/1.1 request without Host, or a header line without a colon, is 400.
            MHD_OPTION.STRICT_FOR_CLIENT.rawValue, Int32(1),
            MHD_OPTION.URI_LOG_CALLBACK.rawValue, unsafeBitCast(uriLog, to: OpaquePointer.self), cls,
            MHD_OPTION.NOTIFY_COMPLETED.rawValue, unsafeBitCast(completed, to: OpaquePointer.self), cls,
            MHD_OPTION.NOTIFY_CONNECTION.rawValue, unsafeBitCast(connectionNotice, to: OpaquePointer.self), cls,
            MHD_OPTION.END.rawValue,
        ]
        return withVaList(options) { list in
            MHD_start_daemon_va(flags, 0, nil, nil, access, UnsafeMutableRawPointer(cls), list)
        }
    }
}

/// The daemon handle. `@unchecked Sendable`: libmicrohttpd's daemon calls used here
/// (quiesce, stop) are made once, from `stop()`, under the server's lock hand-off.
struct DaemonRef: @unchecked Sendable {
    let raw: OpaquePointer
}
