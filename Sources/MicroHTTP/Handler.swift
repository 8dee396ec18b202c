/// Answers requests; called on the polling threads, so `route` must be quick.
public protocol HTTPHandler: Sendable {
    /// Answers `request` now, or names a job to run on a worker thread.
    func route(_ request: borrowing Request) -> Dispatch

    /// Called once the request's headers are complete and before any of its body is read
    /// (`request.body` is empty): a response refuses the request at once (401 for a missing
    /// token) and the connection closes without the body being read; nil lets it proceed.
    func admit(_ request: borrowing Request) -> Response?
}

extension HTTPHandler {
    /// Admits every request (handlers without an early check).
    public func admit(_ request: borrowing Request) -> Response? { nil }
}

/// Where a request is answered, with the route label metrics use.
public enum Dispatch: ~Copyable {
    /// Answered on the polling thread (cheap work: one page through a fast codec).
    case inline(Response, route: String)
    /// Answered by `job` on a worker while the connection is suspended (anything that can be slow).
    case offload(route: String, job: @Sendable (borrowing Request) -> Response)
    /// Like `offload`, but on the background workers, which run at a lower CPU priority:
    /// for maintenance that may run for seconds and must not slow the serving threads.
    case background(route: String, job: @Sendable (borrowing Request) -> Response)
}

/// How one request ended, for metrics.
public struct RequestOutcome: Sendable {
    /// The label the handler gave (`""` when the server answered by itself, e.g. 413).
    public let route: String
    /// Status sent; 0 when none was (the client went away or the request was malformed).
    public let status: Int
    /// Nanoseconds from the request line to the end of the response.
    public let durationNanos: UInt64
    /// False when the connection failed or timed out before the response was sent.
    public let completed: Bool
}
