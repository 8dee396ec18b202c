import CMicroHTTPD
import Glibc
import Synchronization
import ZSync

/// Shared state behind the callbacks' `cls` pointer: the handler, the workers, the counters.
///
/// `@unchecked Sendable`: the stored properties are immutable, atomic, or behind `lifecycle`.
final class ServerCore: @unchecked Sendable {
    struct Lifecycle: Sendable {
        /// Connections suspended for a worker and not yet resumed.
        var suspended = 0
        /// Set once shutdown is past its grace: no more suspensions (MHD_stop_daemon would hang).
        var closed = false
    }

    let handler: any HTTPHandler
    let maxBodyBytes: Int
    let maxDiscardBytes: Int
    let maxBodyMemory: Int
    let maxQueryItems: Int
    let errorLine: @Sendable (String, String) -> String
    /// Bounds the time of a keep-alive connection's later requests.
    let watchdog: Watchdog
    /// Body bytes claimed by requests in flight (at most `maxBodyMemory`).
    let bodyMemory = Atomic<Int>(0)
    let workers: WorkerPool
    let background: WorkerPool
    let observer: (@Sendable (RequestOutcome) -> Void)?
    let lifecycle = Watched(Lifecycle())
    /// Requests handed to the handler and not yet completed. An atomic, not part of
    /// `lifecycle`: counted twice per request, and only a stopping server waits for it.
    let inFlight = Atomic<Int>(0)
    /// Connections libmicrohttpd serves.
    let connections = Atomic<Int>(0)
    /// Connections the front door holds until their first request head is complete.
    let waiting = Atomic<Int>(0)
    /// After `MHD_quiesce_daemon`: replies carry `Connection: close` so keep-alive clients let go.
    let draining = Atomic<Bool>(false)

    init(config: ServerConfig, handler: any HTTPHandler, observer: (@Sendable (RequestOutcome) -> Void)?) {
        self.handler = handler
        maxBodyBytes = config.maxBodyBytes
        maxDiscardBytes = config.maxDiscardBytes
        maxBodyMemory = max(config.maxBodyMemory, config.maxBodyBytes)
        maxQueryItems = config.maxQueryItems
        errorLine = config.errorLine
        watchdog = Watchdog(idleTimeoutSeconds: config.idleTimeoutSeconds, headerTimeoutSeconds: config.headerTimeoutSeconds)
        workers = WorkerPool(threads: config.workerCount, capacity: config.maxQueuedJobs)
        background = WorkerPool(threads: config.backgroundWorkerCount, capacity: config.maxQueuedJobs, nice: config.backgroundNice)
        self.observer = observer
    }

    /// The distinct values of the request's Content-Length headers.
    static func contentLengths(_ connection: OpaquePointer) -> Set<String> {
        var values = Set<String>()
        withUnsafeMutablePointer(to: &values) { set in
            _ = MHD_get_connection_values(
                connection, .HEADER_KIND,
                { cls, _, key, value in
                    guard let key, strcasecmp(key, "Content-Length") == 0 else { return .YES }
                    let set = cls!.assumingMemoryBound(to: Set<String>.self)
                    set.pointee.insert(value.map { String(cString: $0) } ?? "")
                    return .YES
                }, set)
        }
        return values
    }

    /// The access handler: admits the request on its headers, collects the body, then routes,
    /// queues or suspends.
    func access(
        _ context: RequestContext, _ connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>,
        upload: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>
    ) -> MHD_Result {
        switch context.phase {
        case .fresh:
            // Headers only. Replying now counts as an early reply and closes the connection
            // without reading the body, which is what every refusal here wants; the normal
            // reply waits for the next call.
            context.phase = .receiving
            Self.connectionState(connection)?.waitingSince.store(0, ordering: .relaxed)
            context.method = String(cString: method)
            context.path = String(cString: url)
            // Differing Content-Length headers are how requests get smuggled past a proxy
            // (RFC 9112 6.3): refuse.
            let contentLengths = Self.contentLengths(connection)
            if contentLengths.count > 1 {
                return queue(engineError(400, "EINVAL", "conflicting Content-Length headers"), on: connection, context)
            }
            if RequestHead.queryItemCount(context.rawQuery.utf8) > maxQueryItems {
                return queue(engineError(400, "EINVAL", "more than \(maxQueryItems) query items"), on: connection, context)
            }
            if let refusal = handler.admit(makeRequest(context, ConnectionRef(raw: connection))) {
                return queue(refusal, on: connection, context)
            }
            if let declared = contentLengths.first, let length = Int(declared), length > 0 {
                if length > maxBodyBytes { return queue(tooLarge(), on: connection, context) }
                guard claimBodyMemory(length, for: context) else { return queue(overloaded(), on: connection, context) }
                context.reserve(length)
            }
            return .YES
        case .receiving:
            let size = uploadSize.pointee
            if size > 0 {
                uploadSize.pointee = 0
                if context.refusal != nil {
                    // 0.9.75 cannot queue a reply mid-upload: drop chunks until the body ends
                    // (then the refusal goes out normally); past `maxDiscardBytes` write the
                    // refusal on the socket ourselves and close.
                    context.discarded += size
                    if context.discarded > maxDiscardBytes {
                        sendAndClose(refusalResponse(context), connection)
                        return .NO
                    }
                    return .YES
                }
                if context.bodyCount + size > maxBodyBytes {
                    refuseBody(context, .tooLarge, discarded: context.bodyCount + size)
                    return .YES
                }
                if context.bodyCount + size > context.claimed {
                    let want = min(maxBodyBytes, max(context.bodyCount + size, context.claimed * 2, 64 << 10))
                    guard claimBodyMemory(want - context.claimed, for: context) else {
                        refuseBody(context, .overloaded, discarded: context.bodyCount + size)
                        return .YES
                    }
                }
                context.append(upload!, count: size)
                return .YES
            }
            if context.refusal != nil { return queue(refusalResponse(context), on: connection, context) }
            return dispatch(context, connection)
        case .offloaded:
            guard let reply = context.handoff!.withLock({ $0.take() }) else { return .YES }
            return queue(reply, on: connection, context)
        }
    }

    /// Counts `bytes` more of body held in memory for `context`; false (and nothing counted)
    /// when that would go past `maxBodyMemory`.
    private func claimBodyMemory(_ bytes: Int, for context: RequestContext) -> Bool {
        let after = bodyMemory.add(bytes, ordering: .relaxed).newValue
        guard after <= maxBodyMemory else {
            bodyMemory.subtract(bytes, ordering: .relaxed)
            return false
        }
        context.claimed += bytes
        return true
    }

    /// Drops the body collected so far and its memory claim; the rest of it is discarded.
    private func refuseBody(_ context: RequestContext, _ refusal: RequestContext.Refusal, discarded: Int) {
        context.refusal = refusal
        context.discarded = discarded
        context.discardBody()
        bodyMemory.subtract(context.claimed, ordering: .relaxed)
        context.claimed = 0
    }

    private func refusalResponse(_ context: RequestContext) -> Response {
        context.refusal == .overloaded ? overloaded() : tooLarge()
    }

    /// Writes `response` straight to the connection's socket and shuts its sending side:
    /// for a reply libmicrohttpd cannot queue mid-upload. The caller then returns `.NO`.
    private func sendAndClose(_ response: consuming Response, _ connection: OpaquePointer) {
        let fd = zramd_connection_fd(connection)
        guard fd >= 0 else { return }
        let status = response.status
        RawReply.send(fd, status: status, headers: response.headers, body: response.body.bytes)
        shutdown(fd, Int32(SHUT_WR))
    }

    private func dispatch(_ context: RequestContext, _ connection: OpaquePointer) -> MHD_Result {
        inFlight.add(1, ordering: .sequentiallyConsistent)
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

    /// An error the engine answers by itself, its body in the configured one-line format.
    func engineError(_ status: Int, _ errno: String, _ why: String, retryAfter: Bool = false) -> Response {
        Response(status: status, headers: retryAfter ? [("Retry-After", "1")] : [], text: errorLine(errno, why))
    }

    private func tooLarge() -> Response {
        engineError(413, "E2BIG", "request body over \(maxBodyBytes) bytes")
    }

    private func overloaded() -> Response {
        engineError(503, "EAGAIN", "request bodies in memory are at the --max-body-memory limit (\(maxBodyMemory) bytes)", retryAfter: true)
    }

    private func unavailable(_ why: String) -> Response {
        engineError(503, "EAGAIN", why, retryAfter: true)
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

    /// The state the connection-notify callback attached to `connection`.
    static func connectionState(_ connection: OpaquePointer) -> ConnectionState? {
        zramd_socket_context(connection).map { Unmanaged<ConnectionState>.fromOpaque($0).takeUnretainedValue() }
    }

    /// Bodies from this size on are batch-sized: malloc keeps such buffers after they are freed
    /// (see `MallocTuning` in zramd), so the connection's end trims the heap.
    static let largeBody = 64 << 10

    /// A connection ends: if it carried large bodies, the heap is trimmed on a background
    /// worker (malloc kept those buffers for the connection's next request).
    func closed(_ state: ConnectionState) {
        if state.carriedLargeBody.load(ordering: .relaxed) { _ = background.trySubmit { Heap.trim() } }
    }

    /// The request-completed callback's work: the body's memory goes at once (not when the
    /// context is released, which may be after the next request took another buffer); the
    /// connection waits for its next head from now; counters and the metrics hook.
    func completed(_ context: RequestContext, _ connection: OpaquePointer?, _ termination: MHD_RequestTerminationCode) {
        let now = MonotonicClock.nanoseconds()
        if let connection, let state = Self.connectionState(connection) {
            state.waitingSince.store(now, ordering: .relaxed)
            if context.bodyCapacity >= Self.largeBody { state.carriedLargeBody.store(true, ordering: .relaxed) }
        }
        context.discardBody()
        if context.claimed > 0 { bodyMemory.subtract(context.claimed, ordering: .relaxed) }
        if context.routed {
            // Once draining, the stopping thread may be waiting for the last one: wake it.
            let left = inFlight.subtract(1, ordering: .sequentiallyConsistent).newValue
            if left == 0, draining.load(ordering: .sequentiallyConsistent) { lifecycle.withLock { _ in } }
        }
        observer?(
            RequestOutcome(
                route: context.route, status: context.status, durationNanos: now - context.startNanos,
                completed: termination == .REQUEST_TERMINATED_COMPLETED_OK))
    }
}
