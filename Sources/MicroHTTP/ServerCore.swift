import CMicroHTTPD
import Glibc
import Synchronization
import ZSync

/// Shared state behind the callbacks' `cls` pointer: the handler, the workers, the counters.
///
/// `@unchecked Sendable`: the stored properties are immutable, atomic, or behind `lifecycle`.
final class ServerCore: @unchecked Sendable {
    struct Lifecycle {
        /// Requests handed to the handler and not yet completed.
        var inFlight = 0
        /// Connections suspended for a worker and not yet resumed.
        var suspended = 0
        /// Set once shutdown is past its grace: no more suspensions (MHD_stop_daemon would hang).
        var closed = false
    }

    let handler: any HTTPHandler
    let maxBodyBytes: Int
    let maxDiscardBytes: Int
    let workers: WorkerPool
    let background: WorkerPool
    let observer: (@Sendable (RequestOutcome) -> Void)?
    let lifecycle = Locked(Lifecycle())
    let connections = Atomic<Int>(0)
    /// After `MHD_quiesce_daemon`: replies carry `Connection: close` so keep-alive clients let go.
    let draining = Atomic<Bool>(false)

    init(config: ServerConfig, handler: any HTTPHandler, observer: (@Sendable (RequestOutcome) -> Void)?) {
        self.handler = handler
        maxBodyBytes = config.maxBodyBytes
        maxDiscardBytes = config.maxDiscardBytes
        workers = WorkerPool(threads: config.workerCount, capacity: config.maxQueuedJobs)
        background = WorkerPool(threads: config.backgroundWorkerCount, capacity: config.maxQueuedJobs, nice: config.backgroundNice)
        self.observer = observer
    }

    /// The distinct values of the request's Content-Length headers.
    static func contentLengths(_ connection: OpaquePointer) -> Set<String> {
        var values = Set<String>()
        withUnsafeMutablePointer(to: &values) { set in
            _ = MHD_get_connection_values(connection, .HEADER_KIND, { cls, _, key, value in
                guard let key, strcasecmp(key, "Content-Length") == 0 else { return .YES }
                let set = cls!.assumingMemoryBound(to: Set<String>.self)
                set.pointee.insert(value.map { String(cString: $0) } ?? "")
                return .YES
            }, set)
        }
        return values
    }

    /// The access handler: collects the body, then routes, queues or suspends.
    func access(
        _ context: RequestContext, _ connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>,
        upload: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        switch context.phase {
        case .fresh:
            // Headers only. Replying now counts as an early reply and closes the connection,
            // so except for an oversized body (whose connection should close) reply later.
            context.phase = .receiving
            context.method = String(cString: method)
            context.path = String(cString: url)
            // Differing Content-Length headers are how requests get smuggled past a proxy
            // (RFC 9112 6.3): refuse, and let the early reply close the connection.
            if Self.contentLengths(connection).count > 1 {
                return queue(Response(status: 400, text: "conflicting Content-Length headers\n"), on: connection, context)
            }
            if let declared = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length"),
                let length = Int(String(cString: declared))
            {
                if length > maxBodyBytes { return queue(tooLarge(), on: connection, context) }
                context.reserve(length)
            }
            return .YES
        case .receiving:
            let size = uploadSize.pointee
            if size > 0 {
                uploadSize.pointee = 0
                if context.tooLarge {
                    // 0.9.75 cannot queue a reply mid-upload: drop chunks until the body ends
                    // (then 413), or close once the client has pushed too much.
                    context.discarded += size
                    return context.discarded > maxDiscardBytes ? .NO : .YES
                }
                if context.bodyCount + size > maxBodyBytes {
                    context.tooLarge = true
                    context.discarded = context.bodyCount + size
                    context.discardBody()
                    return .YES
                }
                context.append(upload!, count: size)
                return .YES
            }
            if context.tooLarge { return queue(tooLarge(), on: connection, context) }
            return dispatch(context, connection)
        case .offloaded:
            guard let reply = context.handoff!.withLock({ $0.take() }) else { return .YES }
            return queue(reply, on: connection, context)
        }
    }

    private func dispatch(_ context: RequestContext, _ connection: OpaquePointer) -> MHD_Result {
        lifecycle.withLock { $0.inFlight += 1 }
        context.routed = true
        let request = makeRequest(context, ConnectionRef(raw: connection))
        switch handler.route(request) {
        case .inline(let response, let route):
            context.route = route
            return queue(response, on: connection, context)
        case .offload(let route, let job):
            return suspend(context, connection, route: route, on: workers, job)
        case .background(let route, let job):
            return suspend(context, connection, route: route, on: background, job)
        }
    }

    /// Suspends the connection and runs `job` on `pool`; the reply goes out on resume.
    private func suspend(
        _ context: RequestContext, _ connection: OpaquePointer, route: String, on pool: WorkerPool,
        _ job: @escaping @Sendable (borrowing Request) -> Response
    ) -> MHD_Result {
        context.route = route
        let admitted = lifecycle.withLock { state in
            guard !state.closed else { return false }
            state.suspended += 1
            return true
        }
        guard admitted else { return queue(unavailable("server is stopping"), on: connection, context) }
        context.phase = .offloaded
        context.handoff = Locked(nil)
        MHD_suspend_connection(connection)
        let ref = ConnectionRef(raw: connection)
        let submitted = pool.trySubmit { [self] in
            finish(context, ref, job(makeRequest(context, ref)))
        }
        if !submitted { finish(context, ref, unavailable("worker queue is full")) }
        return .YES
    }

    /// Stores an offloaded request's reply and wakes its connection (any thread).
    private func finish(_ context: RequestContext, _ connection: ConnectionRef, _ reply: consuming Response) {
        var slot = Optional(reply)
        context.handoff!.withLock { $0 = slot.take() }
        MHD_resume_connection(connection.raw)
        // Counted down only after the resume: MHD_stop_daemon aborts on a suspended connection.
        lifecycle.withLock { $0.suspended -= 1 }
    }

    private func makeRequest(_ context: RequestContext, _ connection: ConnectionRef) -> Request {
        Request(
            method: context.method, path: context.path, rawQuery: context.rawQuery, body: context.bodyBytes,
            connection: connection)
    }

    private func tooLarge() -> Response {
        Response(status: 413, text: "request body over \(maxBodyBytes) bytes\n")
    }

    private func unavailable(_ why: String) -> Response {
        Response(status: 503, headers: [("Retry-After", "1")], text: "\(why)\n")
    }

    /// Hands `response` to libmicrohttpd without copying its body (`.RESPMEM_MUST_FREE`).
    private func queue(_ response: consuming Response, on connection: OpaquePointer, _ context: RequestContext) -> MHD_Result {
        context.status = response.status
        let status = response.status
        let headers = response.headers
        let (base, count) = response.body.release()
        let created =
            base == nil
            ? MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT)
            : MHD_create_response_from_buffer(count, base, .RESPMEM_MUST_FREE)
        guard let reply = created else {
            free(base)
            return .NO
        }
        for header in headers { MHD_add_response_header(reply, header.name, header.value) }
        if draining.load(ordering: .relaxed) { MHD_add_response_header(reply, "Connection", "close") }
        let queued = MHD_queue_response(connection, UInt32(status), reply)
        MHD_destroy_response(reply)
        return queued
    }

    /// The request-completed callback's work: counters and the metrics hook.
    func completed(_ context: RequestContext, _ termination: MHD_RequestTerminationCode) {
        if context.routed { lifecycle.withLock { $0.inFlight -= 1 } }
        observer?(
            RequestOutcome(
                route: context.route, status: context.status, durationNanos: Clock.nanos() - context.startNanos,
                completed: termination == .REQUEST_TERMINATED_COMPLETED_OK))
    }
}
