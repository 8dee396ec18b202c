import CLinux
import Glibc
import ZSync

/// One client connection, driven by the polling thread that owns it: requests parsed in
/// place in its input buffer, bodies read into the same buffer (a page PUT's body is handed
/// to the handler where it landed), replies written with one `sendmsg` of head and body.
///
/// `@unchecked Sendable`: only the owning poller touches it, except while a request is
/// offloaded: then the poller leaves it alone (`state == .suspended`) and the worker reads
/// the request (input buffer, `method`, `path`, `rawQuery`) and writes `handoff`.
final class Connection: @unchecked Sendable {
    enum State {
        /// Parsing what arrived; reading more when it runs out.
        case reading
        /// A worker runs the current request.
        case suspended
        /// A reply is partly sent; nothing else happens until it is all out.
        case writing
        /// Answered with `Connection: close` and shut for sending: what the client still
        /// sends is read and dropped until it closes, so closing does not reset the reply.
        case lingering
        case closed
    }

    let fd: Int32
    private let poller: Poller
    private let core: ServerCore
    private var state = State.reading
    /// Set by an event: the socket may have bytes (or an end) not read yet.
    private var readable = true
    /// An event said the client shut its side (or the socket failed): read until `recv` says so.
    private var hangUpSeen = false
    /// When something was last received or sent (idle timeout), when the head being received
    /// started arriving (header timeout), and when lingering began.
    private var lastNanos: UInt64
    private var headStartNanos: UInt64 = 0
    private var lingerStartNanos: UInt64 = 0
    private var lingerDiscarded = 0

    private var input: ByteBuffer
    /// The current request's head, its offsets from the start of `input`.
    private var head: RequestHead.Parsed?
    private var chunked = ChunkedBody()
    /// Body memory counted against the server's limit for the current request.
    private var claimed = 0
    private var bodyCount = 0
    private var continueSent = false
    private var requestStartNanos: UInt64 = 0
    /// The current request, decoded once its head is complete (the worker reads them).
    private var method = HTTPMethod.GET
    private var path = ""
    private var rawQuery = ""
    private var route = ""
    private var routed = false
    private var carriedLargeBody = false
    /// An offloaded request's reply, from its worker.
    let handoff = Locked<Response?>(nil)

    private var output: ByteBuffer
    private var outputSent = 0
    private var pendingBody: ResponseBody?
    private var bodySent = 0
    private var closeAfterReply = false
    private var replyStatus = 0
    /// The reply answers a request (not a malformed or unfinished head): metrics count it.
    private var replyReported = false

    init(fd: Int32, poller: Poller) {
        self.fd = fd
        self.poller = poller
        core = poller.core
        input = ByteBuffer(capacity: Self.inputCapacity)
        output = ByteBuffer(capacity: 512)
        lastNanos = MonotonicClock.nanoseconds()
        // The first head's deadline runs from accept, whether or not anything arrives.
        headStartNanos = lastNanos
    }

    /// The input buffer's size at rest; a head or body that needs more grows it for the request.
    static let inputCapacity = 8 << 10

    /// Bodies from this size on are batch-sized: malloc keeps such buffers after they are freed
    /// (see `MallocTuning` in zramd), so the connection's end trims the heap.
    static let largeBody = 64 << 10

    // MARK: Driving

    /// An epoll event for this socket.
    func handle(_ events: UInt32) {
        if events & ~EPOLLOUT.rawValue != 0 { readable = true }
        if events & (EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 { hangUpSeen = true }
        drive()
    }

    /// Does all that can be done now: sends what is pending, parses and answers what arrived,
    /// reads more while the socket has it.
    func drive() {
        while true {
            switch state {
            case .closed, .suspended:
                return
            case .writing:
                guard flush() else { return }
                finishReply()
            case .lingering:
                linger()
                return
            case .reading:
                if parse() { continue }
                guard state == .reading else { continue }
                guard readable else { return }
                guard receive() else { return }
            }
        }
    }

    /// One `recv` into the input buffer; false when there is nothing more to do for now.
    private func receive() -> Bool {
        if input.spare.count == 0 { input.reserve(input.capacity * 2) }
        let space = input.spare
        let n = recv(fd, space.baseAddress, space.count, Int32(MSG_DONTWAIT))
        if n > 0 {
            input.count += n
            lastNanos = MonotonicClock.nanoseconds()
            if headStartNanos == 0 { headStartNanos = lastNanos }
            // A short read took everything there was: the next arrival is a new edge. An end
            // that came with the bytes has no edge of its own, so then read on until it shows.
            if n < space.count && !hangUpSeen { readable = false }
            return true
        }
        if n == 0 {
            // The client shut its side: whatever is unfinished never will be.
            close()
            return false
        }
        switch errno {
        case EAGAIN, EWOULDBLOCK: readable = false
        case EINTR: return true
        default: close()
        }
        return false
    }

    // MARK: Requests

    /// Handles the next request in the input if it is all there; true when one was handled
    /// (or refused) and there may be another.
    private func parse() -> Bool {
        if head == nil {
            // Empty lines before a request line are ignored (RFC 9112 2.2); dropped here, so a
            // client sending nothing else cannot grow the buffer past the head limits.
            input.removeFirst(RequestHead.blankPrefix(UnsafeRawBufferPointer(start: input.base, count: input.count)))
            guard input.count > 0 else { return false }
            switch RequestHead.inspect(UnsafeRawBufferPointer(start: input.base, count: input.count), core.limits) {
            case .incomplete:
                return false
            case .reject(let status, let errno, let why):
                refuse(core.engineError(status, errno, why))
                return true
            case .complete(let parsed):
                guard begin(parsed) else { return true }
            }
        }
        guard let head, let bodyCount = bodyReceived(head) else { return false }
        dispatch(head, bodyCount: bodyCount)
        return true
    }

    /// Admits a request on its head; false when it was refused.
    private func begin(_ parsed: RequestHead.Parsed) -> Bool {
        // The request starts when its head's last bytes arrived.
        requestStartNanos = lastNanos
        let bytes = UnsafeRawBufferPointer(start: input.base, count: input.count)
        method = HTTPMethod(bytes, parsed.methodStart, parsed.methodEnd)
        var targetEnd = parsed.targetEnd
        rawQuery = ""
        if let question = (parsed.targetStart..<parsed.targetEnd).first(where: { bytes[$0] == UInt8(ascii: "?") }) {
            rawQuery = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(question + 1)..<parsed.targetEnd]), as: UTF8.self)
            targetEnd = question
        }
        path = PathDecoding.decode(UnsafeRawBufferPointer(rebasing: bytes[parsed.targetStart..<targetEnd]))
        head = parsed
        if let refusal = core.handler.admit(request(parsed, body: UnsafeRawBufferPointer(start: nil, count: 0))) {
            refuse(refusal)
            return false
        }
        if let length = parsed.contentLength, length > 0 {
            if length > core.maxBodyBytes {
                refuse(core.tooLarge())
                return false
            }
            guard claim(length) else {
                refuse(core.overloaded())
                return false
            }
            input.reserve(parsed.end + length)
        }
        return true
    }

    /// The body's length once it is all in the input (decoded in place when chunked); nil
    /// while more is to come (or when the request was refused).
    private func bodyReceived(_ head: RequestHead.Parsed) -> Int? {
        let expectsBody = head.chunked || (head.contentLength ?? 0) > 0
        if head.chunked {
            switch chunked.decode(&input, from: head.end) {
            case .complete(let count):
                return count
            case .needMore(let declared):
                if declared > core.maxBodyBytes {
                    refuse(core.tooLarge())
                    return nil
                }
                if input.capacity - input.count < 4096 {
                    let grown = input.capacity * 2
                    guard claim(grown - input.capacity) else {
                        refuse(core.overloaded())
                        return nil
                    }
                    input.reserve(grown)
                }
            case .malformed:
                refuse(core.engineError(400, "EINVAL", "malformed chunked body"))
                return nil
            }
        } else {
            let length = head.contentLength ?? 0
            if input.count >= head.end + length { return length }
        }
        if expectsBody && head.expectContinue && !continueSent {
            continueSent = true
            let line: StaticString = "HTTP/1.1 100 Continue\r\n\r\n"
            _ = send(fd, line.utf8Start, line.utf8CodeUnitCount, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        return nil
    }

    private func claim(_ bytes: Int) -> Bool {
        guard core.claimBodyMemory(bytes) else { return false }
        claimed += bytes
        return true
    }

    private func request(_ head: RequestHead.Parsed, body: UnsafeRawBufferPointer) -> Request {
        Request(
            method: method, path: path, rawQuery: rawQuery, body: body,
            headerLines: UnsafeRawBufferPointer(start: input.base + head.headersStart, count: head.end - head.headersStart))
    }

    /// The current request's body, where it lies in the input.
    private var currentBody: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: input.base + (head?.end ?? 0), count: bodyCount)
    }

    private func dispatch(_ head: RequestHead.Parsed, bodyCount count: Int) {
        poller.inFlight.add(1, ordering: .sequentiallyConsistent)
        routed = true
        if input.capacity >= Self.largeBody { carriedLargeBody = true }
        bodyCount = count
        switch core.handler.route(request(head, body: currentBody)) {
        case .inline(let response, let route):
            self.route = route
            reply(response)
        case .offload(let route, let job):
            suspend(route: route, on: core.workers, job)
        case .background(let route, let job):
            suspend(route: route, on: core.background, job)
        }
    }

    /// Runs `job` on `pool`; the poller sends its reply when the worker hands it back.
    private func suspend(route: String, on pool: WorkerPool, _ job: @escaping @Sendable (borrowing Request) -> Response) {
        self.route = route
        guard core.beginSuspension() else {
            reply(core.unavailable("server is stopping"))
            return
        }
        state = .suspended
        let submitted = pool.trySubmit { [self] in
            let response = job(request(head!, body: currentBody))
            var slot = Optional(response)
            handoff.withLock { $0 = slot.take() }
            poller.resume(self)
            core.endSuspension()
        }
        if !submitted {
            state = .reading
            core.endSuspension()
            reply(core.unavailable("worker queue is full"))
        }
    }

    /// The poller's call once the worker handed the reply back.
    func resumed() {
        guard state == .suspended, let response = handoff.withLock({ $0.take() }) else { return }
        state = .reading
        reply(response)
        drive()
    }

    /// A refusal of the current (or a malformed) request: answered, then the connection closes
    /// without reading the rest of what the client sends.
    private func refuse(_ response: consuming Response) {
        closeAfterReply = true
        reply(response)
    }

    // MARK: Replies

    /// Sends `response` for the current request and gets ready for the next.
    private func reply(_ response: consuming Response) {
        let head = head
        replyReported = head != nil
        let isHead = method == .HEAD && head != nil
        closeAfterReply = closeAfterReply || head?.close ?? true || core.draining.load(ordering: .relaxed)
        replyStatus = response.status
        output.count = 0
        outputSent = 0
        bodySent = 0
        ResponseHead.write(
            into: &output, status: response.status, headers: response.headers, bodyCount: response.body.count,
            date: poller.date, close: closeAfterReply)
        if isHead { pendingBody = nil } else { pendingBody = .some(response.body) }
        endRequest()
        state = .writing
        if flush() { finishReply() }
    }

    /// Writes what is pending of the reply; true when all of it is out.
    private func flush() -> Bool {
        while true {
            var vectors = (iovec(), iovec())
            var count = 0
            withUnsafeMutableBytes(of: &vectors) { raw in
                let iov = raw.bindMemory(to: iovec.self)
                if outputSent < output.count {
                    iov[count] = iovec(iov_base: output.base + outputSent, iov_len: output.count - outputSent)
                    count += 1
                }
                if let body = pendingBody?.bytes, bodySent < body.count {
                    iov[count] = iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress! + bodySent), iov_len: body.count - bodySent)
                    count += 1
                }
            }
            guard count > 0 else {
                pendingBody = nil
                return true
            }
            var message = msghdr()
            let sent = withUnsafeMutablePointer(to: &vectors) { pointer in
                pointer.withMemoryRebound(to: iovec.self, capacity: 2) { iov in
                    message.msg_iov = iov
                    message.msg_iovlen = count
                    return sendmsg(fd, &message, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                }
            }
            if sent < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return false }
                close()
                return false
            }
            lastNanos = MonotonicClock.nanoseconds()
            var left = sent
            let headLeft = output.count - outputSent
            outputSent += min(left, headLeft)
            left -= min(left, headLeft)
            bodySent += left
        }
    }

    /// The reply is all out: report it, then close or go on with the next request.
    private func finishReply() {
        if replyReported {
            core.observer?(RequestOutcome(route: route, status: replyStatus, durationNanos: lastNanos - requestStartNanos, completed: true))
        }
        route = ""
        if closeAfterReply {
            shutdown(fd, Int32(SHUT_WR))
            state = .lingering
            lingerStartNanos = MonotonicClock.nanoseconds()
            readable = true
        } else {
            state = .reading
            headStartNanos = input.count > 0 ? lastNanos : 0
        }
    }

    /// The current request is answered: its bytes leave the input, its body memory is given
    /// back, it is no longer in flight.
    private func endRequest() {
        if let head, !closeAfterReply {
            let used = head.end + (chunked.encodedCount ?? head.contentLength ?? 0)
            input.removeFirst(min(used, input.count))
        } else {
            input.count = 0
        }
        if input.capacity > Self.inputCapacity && input.count <= Self.inputCapacity { input.shrink(to: Self.inputCapacity) }
        head = nil
        chunked = ChunkedBody()
        continueSent = false
        if claimed > 0 {
            core.releaseBodyMemory(claimed)
            claimed = 0
        }
        if routed {
            routed = false
            core.requestDone(on: poller)
        }
    }

    /// Reads and drops what the client still sends after a closing reply, until it closes,
    /// `maxDiscardBytes` went by, or the poller's sweep finds it lingering too long. A client
    /// that had sent nothing more when the reply went out is closed at once.
    private func linger() {
        // The input buffer is free by now (the closing reply dropped what it held).
        input.count = 0
        let scratch = input.spare
        while true {
            let n = recv(fd, scratch.baseAddress, scratch.count, Int32(MSG_DONTWAIT))
            if n > 0 {
                lingerDiscarded += n
                if lingerDiscarded > core.maxDiscardBytes { break }
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && lingerDiscarded > 0 {
                readable = false
                return
            }
            break
        }
        close()
    }

    // MARK: Timeouts and closing

    /// The poller's periodic check: 408 for a head or body that did not arrive in time,
    /// a quiet close for an idle keep-alive connection, the end of a stalled reply or linger.
    func checkDeadlines(now: UInt64) {
        func since(_ nanos: UInt64) -> UInt64 { now > nanos ? now - nanos : 0 }
        switch state {
        case .reading:
            if head == nil && headStartNanos == 0 {
                if since(lastNanos) > core.idleTimeoutNanos { close() }
            } else if head == nil && since(headStartNanos) > core.headerTimeoutNanos {
                refuse(core.engineError(408, "ETIMEDOUT", "request head not complete within \(Double(core.headerTimeoutNanos) / 1e9) s"))
                drive()
            } else if since(lastNanos) > core.idleTimeoutNanos {
                refuse(core.engineError(408, "ETIMEDOUT", "nothing received for \(core.idleTimeoutNanos / 1_000_000_000) s"))
                drive()
            }
        case .writing:
            if since(lastNanos) > core.idleTimeoutNanos { close() }
        case .lingering:
            if since(lingerStartNanos) > Self.lingerNanos { close() }
        case .suspended, .closed:
            break
        }
    }

    /// How long a closing connection reads and drops what its client still sends.
    static let lingerNanos: UInt64 = 2_000_000_000

    /// Closes the socket and lets go of everything the connection held. A reply that was
    /// never all sent is reported as not completed.
    func close() {
        guard state != .closed else { return }
        if state == .writing && replyReported {
            core.observer?(RequestOutcome(route: route, status: replyStatus, durationNanos: lastNanos - requestStartNanos, completed: false))
        }
        if state == .reading && head != nil { endRequest() }
        state = .closed
        pendingBody = nil
        poller.forget(self)
        Glibc.close(fd)
        if carriedLargeBody { core.trimHeapSoon() }
    }
}
