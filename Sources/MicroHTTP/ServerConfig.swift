import Glibc
import ZSync

/// How the server listens, how many threads it runs and what it refuses.
public struct ServerConfig: Sendable {
    /// IPv4 or IPv6 literal to bind (no host names).
    public var host: String
    /// TCP port; 0 picks a free one (read it back from `HTTPServer.port`).
    public var port: UInt16
    /// Polling threads; inline requests run on these.
    public var threadPoolSize: Int
    /// Threads that run offloaded (slow) requests.
    public var workerCount: Int
    /// Offloaded jobs waiting for a worker beyond which requests get 503 with `Retry-After`.
    public var maxQueuedJobs: Int
    /// Threads that run `Dispatch.background` jobs.
    public var backgroundWorkerCount: Int
    /// The nice value (0...19) the background workers run at; the kernel gives a thread at
    /// nice 10 about a tenth of the CPU a nice-0 thread gets when they compete.
    package var backgroundNice: Int32
    /// Open connections at most (those the front door holds and those being served).
    public var connectionLimit: Int
    /// Seconds a connection may sit without sending or receiving before it is closed.
    public var idleTimeoutSeconds: Int
    /// Largest request body; larger ones get 413 and are never buffered.
    public var maxBodyBytes: Int
    /// Bytes a client may still send after a closing reply (a refused body) that are read and
    /// dropped before the connection is closed (reading them keeps the close from resetting
    /// the connection under the reply).
    package var maxDiscardBytes: Int
    /// Seconds from accepting a connection to its complete request head (request line and
    /// headers), however the bytes trickle in; past it the client gets 408 and is closed.
    public var headerTimeoutSeconds: Double
    /// Longest request line; longer ones get 414.
    public var maxRequestLineBytes: Int
    /// Largest request head (request line plus headers); larger ones get 431.
    public var maxHeaderBytes: Int
    /// Most query items (`&`-separated) a request may carry; more get 400.
    public var maxQueryItems: Int
    /// Request-body bytes all connections together may hold at once; a request that would go
    /// past it gets 503 with `Retry-After` before its body is read.
    public var maxBodyMemory: Int
    /// Formats the body of an error the engine answers by itself from an errno name
    /// (`EINVAL`, `E2BIG`, `ETIMEDOUT`, `EAGAIN`) and a reason; one line with its newline.
    public var errorLine: @Sendable (_ errno: String, _ why: String) -> String
    /// `listen(2)` backlog.
    public var listenBacklog: Int
    /// Seconds `stop()` waits for in-flight requests before closing connections.
    public var shutdownGraceSeconds: Double

    /// A configuration with defaults sized to this machine.
    public init(
        host: String = "127.0.0.1",
        port: UInt16 = 0,
        threadPoolSize: Int = ServerConfig.cores,
        workerCount: Int = ServerConfig.cores,
        maxQueuedJobs: Int = 64,
        backgroundWorkerCount: Int = 1,
        backgroundNice: Int32 = 10,
        connectionLimit: Int = 1024,
        idleTimeoutSeconds: Int = 30,
        maxBodyBytes: Int = 16 << 20,
        maxDiscardBytes: Int = 64 << 20,
        headerTimeoutSeconds: Double = 10,
        maxRequestLineBytes: Int = 8 << 10,
        maxHeaderBytes: Int = 16 << 10,
        maxQueryItems: Int = 64,
        maxBodyMemory: Int = 256 << 20,
        errorLine: @escaping @Sendable (_ errno: String, _ why: String) -> String = { "\($0): \($1)\n" },
        listenBacklog: Int = 511,
        shutdownGraceSeconds: Double = 10
    ) {
        self.host = host
        self.port = port
        self.threadPoolSize = threadPoolSize
        self.workerCount = workerCount
        self.maxQueuedJobs = maxQueuedJobs
        self.backgroundWorkerCount = backgroundWorkerCount
        self.backgroundNice = backgroundNice
        self.connectionLimit = connectionLimit
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxBodyBytes = maxBodyBytes
        self.maxDiscardBytes = maxDiscardBytes
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.maxRequestLineBytes = maxRequestLineBytes
        self.maxHeaderBytes = maxHeaderBytes
        self.maxQueryItems = maxQueryItems
        self.maxBodyMemory = maxBodyMemory
        self.errorLine = errorLine
        self.listenBacklog = listenBacklog
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }

    /// Online CPUs.
    public static var cores: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

/// Why the server could not start.
public enum ServerError: Error, Equatable, CustomStringConvertible {
    /// The listening socket could not be opened.
    case listen(ListenError)

    public var description: String {
        switch self {
        case .listen(let error): "\(error)"
        }
    }
}
