import Glibc
import Synchronization
import ZSync

/// What every connection of a server shares: the handler, the limits, the workers, the
/// counters, and the polling threads connections are spread over.
///
/// `@unchecked Sendable`: the stored properties are immutable, atomic, or behind `lifecycle`;
/// `pollers` is set once, before the first connection is accepted.
final class ServerCore: @unchecked Sendable {
    struct Lifecycle: Sendable {
        /// Requests running on a worker whose reply has not been handed back.
        var suspended = 0
        /// Set once shutdown is past its grace: no more suspensions.
        var closed = false
    }

    let handler: any HTTPHandler
    let limits: RequestHead.Limits
    let headerTimeoutNanos: UInt64
    let idleTimeoutNanos: UInt64
    let maxBodyBytes: Int
    let maxDiscardBytes: Int
    let maxBodyMemory: Int
    let errorLine: @Sendable (String, String) -> String
    /// Body bytes claimed by requests in flight (at most `maxBodyMemory`).
    let bodyMemory = Atomic<Int>(0)
    let workers: WorkerPool
    let background: WorkerPool
    let observer: (@Sendable (RequestOutcome) -> Void)?
    let lifecycle = Watched(Lifecycle())
    /// Requests handed to the handler and not yet answered (each poller counts its own: a
    /// counter both cores write twice per request costs more than the request's parsing).
    var inFlight: Int { pollers.reduce(0) { $0 + $1.inFlight.load(ordering: .sequentiallyConsistent) } }
    /// Connections the polling threads serve.
    let connections = Atomic<Int>(0)
    /// Once stopping: replies carry `Connection: close` so keep-alive clients let go.
    let draining = Atomic<Bool>(false)
    private(set) var pollers: [Poller] = []
    private let nextPoller = Atomic<Int>(0)

    init(config: ServerConfig, handler: any HTTPHandler, observer: (@Sendable (RequestOutcome) -> Void)?) {
        self.handler = handler
        limits = RequestHead.Limits(
            maxRequestLine: config.maxRequestLineBytes, maxHead: config.maxHeaderBytes, maxQueryItems: config.maxQueryItems)
        headerTimeoutNanos = UInt64(max(0.001, config.headerTimeoutSeconds) * 1e9)
        idleTimeoutNanos = UInt64(max(1, config.idleTimeoutSeconds)) * 1_000_000_000
        maxBodyBytes = config.maxBodyBytes
        maxDiscardBytes = config.maxDiscardBytes
        maxBodyMemory = max(config.maxBodyMemory, config.maxBodyBytes)
        errorLine = config.errorLine
        workers = WorkerPool(threads: config.workerCount, capacity: config.maxQueuedJobs)
        background = WorkerPool(threads: config.backgroundWorkerCount, capacity: config.maxQueuedJobs, nice: config.backgroundNice)
        self.observer = observer
        pollers = (0..<max(1, config.threadPoolSize)).map { _ in Poller(core: self) }
    }

    /// Gives a connected socket to the next polling thread.
    func adopt(_ fd: Int32) {
        let index = nextPoller.add(1, ordering: .relaxed).oldValue
        pollers[index % pollers.count].adopt(fd)
    }

    /// Stops the polling threads (closing their connections) and the workers.
    func stop() {
        for poller in pollers { poller.stop() }
        workers.shutdown()
        background.shutdown()
    }

    /// Counts `bytes` more of body held in memory; false (and nothing counted) when that
    /// would go past `maxBodyMemory`.
    func claimBodyMemory(_ bytes: Int) -> Bool {
        let after = bodyMemory.add(bytes, ordering: .relaxed).newValue
        guard after <= maxBodyMemory else {
            bodyMemory.subtract(bytes, ordering: .relaxed)
            return false
        }
        return true
    }

    func releaseBodyMemory(_ bytes: Int) { bodyMemory.subtract(bytes, ordering: .relaxed) }

    /// Counts a request going to a worker; false once the server is past its grace.
    func beginSuspension() -> Bool {
        lifecycle.withLock { state in
            guard !state.closed else { return false }
            state.suspended += 1
            return true
        }
    }

    func endSuspension() { lifecycle.withLock { $0.suspended -= 1 } }

    /// A routed request on `poller` is answered.
    func requestDone(on poller: Poller) {
        poller.inFlight.subtract(1, ordering: .sequentiallyConsistent)
        // Once draining, the stopping thread may be waiting for the last one: wake it.
        if draining.load(ordering: .sequentiallyConsistent), inFlight == 0 { lifecycle.withLock { _ in } }
    }

    /// A connection that carried batch-sized bodies closed: malloc kept those buffers, so the
    /// heap is trimmed on a background worker.
    func trimHeapSoon() { _ = background.trySubmit { Heap.trim() } }

    /// An error the engine answers by itself, its body in the configured one-line format.
    func engineError(_ status: Int, _ errno: String, _ why: String, retryAfter: Bool = false) -> Response {
        Response(status: status, headers: retryAfter ? [("Retry-After", "1")] : [], text: errorLine(errno, why))
    }

    func tooLarge() -> Response {
        engineError(413, "E2BIG", "request body over \(maxBodyBytes) bytes")
    }

    func overloaded() -> Response {
        engineError(503, "EAGAIN", "request bodies in memory are at the --max-body-memory limit (\(maxBodyMemory) bytes)", retryAfter: true)
    }

    func unavailable(_ why: String) -> Response {
        engineError(503, "EAGAIN", why, retryAfter: true)
    }
}
