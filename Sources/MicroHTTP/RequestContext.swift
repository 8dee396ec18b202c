import Glibc
import ZSync

/// Per-request state behind libmicrohttpd's `*con_cls`, from the request line to completion.
///
/// `@unchecked Sendable`: a polling thread owns it until the request is offloaded; then the
/// worker reads `method`/`path`/`body` (the hand-off goes through the worker queue's mutex)
/// while the connection is suspended, and the reply comes back through `handoff`'s lock.
final class RequestContext: @unchecked Sendable {
    enum Phase { case fresh, receiving, offloaded }

    var phase = Phase.fresh
    let startNanos: UInt64
    let rawQuery: String
    var method = ""
    var path = ""
    /// Counted in the server's in-flight requests (so it must be uncounted on completion).
    var routed = false
    var route = ""
    var status = 0
    /// Why the body is being dropped rather than kept.
    enum Refusal { case tooLarge, overloaded }
    /// Set when the body outgrew the limit (413) or the server's body memory (503): further
    /// chunks are dropped and that is the answer.
    var refusal: Refusal?
    /// Body bytes read and dropped since `refusal` was set.
    var discarded = 0
    /// Bytes counted against the server's body memory for this request.
    var claimed = 0
    /// The worker's reply to an offloaded request.
    var handoff: Locked<Response?>?

    private(set) var body: UnsafeMutableRawPointer?
    private(set) var bodyCount = 0
    private(set) var bodyCapacity = 0

    init(rawQuery: String) {
        self.rawQuery = rawQuery
        startNanos = MonotonicClock.nanoseconds()
    }

    deinit { free(body) }

    var bodyBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: body, count: bodyCount) }

    /// Grows the body buffer to at least `capacity` bytes.
    func reserve(_ capacity: Int) {
        guard capacity > bodyCapacity else { return }
        body = realloc(body, capacity)!
        bodyCapacity = capacity
    }

    /// Appends one upload chunk, doubling the buffer when it is full.
    func append(_ chunk: UnsafeRawPointer, count: Int) {
        if bodyCount + count > bodyCapacity { reserve(max(bodyCount + count, bodyCapacity * 2, 4096)) }
        (body! + bodyCount).copyMemory(from: chunk, byteCount: count)
        bodyCount += count
    }

    /// Frees the body (it went over the limit, or the request is complete).
    func discardBody() {
        free(body)
        body = nil
        bodyCount = 0
        bodyCapacity = 0
    }
}
