import Glibc
import ZSync
import ZramDevice

/// One request of the transmission phase.
struct NBDRequest: Sendable {
    var flags: NBDCommandFlags
    var type: UInt16
    var cookie: UInt64
    var offset: UInt64
    var length: UInt32
}

extension NBDCommandFlags: @unchecked Sendable {}

/// One client: its handshake, then a poll loop that reads requests, runs or hands them off,
/// and flushes whatever replies the worker threads could not send without blocking.
///
/// `@unchecked Sendable`: the receive state is touched only by the connection's own thread;
/// `pending`, `inFlight`, `broken`, `stalled` and `socketOpen` only with `lock` held; the handshake results
/// are written before any request is dispatched and read-only afterwards.
final class NBDConnection: @unchecked Sendable {
    let fd: Int32
    let server: NBDServer
    /// A pipe that wakes the loop: workers write to `wakeFD`, the loop polls `wakeReadFD`.
    private let wakeReadFD: Int32
    private let wakeFD: Int32

    // Handshake results.
    var device: ZramDevice!
    var exportName = ""
    var structuredReplies = false
    var allocationContext = false

    // Receive state (the connection's thread only).
    private let inCapacity = 256 << 10
    private let inBuffer: UnsafeMutableRawPointer
    private var inStart = 0
    private var inEnd = 0
    private var partial: (request: NBDRequest, payload: IOBuffer, filled: Int)?
    private var closing = false

    // Shared with the workers (under `lock`).
    private let lock = PThreadMutex()
    private var pending: [(buffer: IOBuffer, sent: Int, count: Int)] = []
    private var inFlight = 0
    private var broken = false
    private var stalled = false
    private var socketOpen = true

    init?(fd: Int32, server: NBDServer) {
        self.fd = fd
        self.server = server
        var ends: [Int32] = [0, 0]
        guard makePipe(&ends, nonBlocking: true) else { return nil }
        wakeReadFD = ends[0]
        wakeFD = ends[1]
        inBuffer = .allocate(byteCount: inCapacity, alignment: 16)
    }

    deinit {
        inBuffer.deallocate()
        close(wakeFD)
        close(wakeReadFD)
    }

    /// Serves the connection to its end and closes the socket.
    func run() {
        defer {
            lock.withLock {
                socketOpen = false
                close(fd)
            }
        }
        do {
            guard try handshake() else { return }
        } catch {
            // The client left, timed out or broke the handshake: nothing to answer.
            if case .violation = error { server.metrics.protocolErrors.add(1, ordering: .relaxed) }
            return
        }
        transmission()
    }

    /// Ends the connection from another thread (server stop): its loop stops reading and
    /// closes the socket once the requests in flight are answered; `hard` also stops sending,
    /// for a client that does not read its replies.
    func abort(hard: Bool = false) {
        // Under the lock: once `run` has closed the socket, its number may belong to another file.
        lock.withLock {
            if socketOpen { shutdown(fd, hard ? Int32(SHUT_RDWR) : Int32(SHUT_RD)) }
        }
        wake()
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeFD, &one, 1)
    }

    // MARK: replies (any thread)

    /// Sends `count` bytes of `buffer` as one reply and retires one request in flight.
    /// Never blocks: what the socket does not take now is left for the connection's loop.
    func complete(_ buffer: IOBuffer, count: Int) {
        lock.lock()
        var mustWake = false
        if !broken {
            if pending.isEmpty {
                var sent = 0
                while sent < count {
                    let n = send(fd, buffer.base + sent, count - sent, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                    if n > 0 { sent += n; continue }
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { break }
                    broken = true
                    break
                }
                if !broken && sent < count {
                    pending.append((buffer, sent, count))
                    mustWake = true
                }
                if broken { mustWake = true }
            } else {
                pending.append((buffer, 0, count))
            }
        }
        inFlight -= 1
        if stalled {
            stalled = false
            mustWake = true
        }
        lock.unlock()
        if mustWake { wake() }
    }

    /// Sends what workers left unsent; the connection's thread only.
    private func flushPending() {
        lock.withLock {
            while !broken, let first = pending.first {
                let n = send(fd, first.buffer.base + first.sent, first.count - first.sent, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    if errno != EAGAIN && errno != EWOULDBLOCK { broken = true }
                    return
                }
                if first.sent + n == first.count {
                    pending.removeFirst()
                } else {
                    pending[0].sent += n
                    return
                }
            }
        }
    }

    // MARK: the transmission loop

    private func transmission() {
        var peerGone = false
        while true {
            if !closing { parseBuffered() }
            // A WRITE's payload often follows its header by microseconds: read it before sleeping in poll.
            if !closing, partial != nil, !receive() { closing = true }
            if !closing { parseBuffered() }
            let (flight, hasPending, isBroken) = lock.withLock { () -> (Int, Bool, Bool) in
                stalled = closing || inFlight >= server.config.maxInFlight
                return (inFlight, !pending.isEmpty, broken)
            }
            if isBroken { closing = true; peerGone = true }
            if closing && flight == 0 && (!hasPending || peerGone) { return }
            let reading = !closing && flight < server.config.maxInFlight
            var events: Int16 = 0
            if reading { events |= Int16(POLLIN) }
            if hasPending && !peerGone { events |= Int16(POLLOUT) }
            var fds = [
                pollfd(fd: peerGone ? -1 : fd, events: events, revents: 0),
                pollfd(fd: wakeReadFD, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&fds, 2, -1) < 0 { continue }
            if fds[1].revents != 0 {
                var drain = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
                _ = read(wakeReadFD, &drain, 32)
            }
            let revents = fds[0].revents
            if revents & Int16(POLLOUT) != 0 { flushPending() }
            if revents & Int16(POLLIN) != 0 && reading {
                if !receive() { closing = true }
            } else if revents & Int16(POLLERR | POLLHUP) != 0 {
                closing = true
                peerGone = true
            }
        }
    }

    /// Reads what the socket has; false at end of stream or on an error.
    private func receive() -> Bool {
        if let (request, payload, filled) = partial {
            let n = recv(fd, payload.base + filled, payload.count - filled, 0)
            if n < 0 { return errno == EAGAIN || errno == EINTR }
            if n == 0 { return false }
            if filled + n == payload.count {
                partial = nil
                dispatch(request, payload: payload)
            } else {
                partial = (request, payload, filled + n)
            }
            return true
        }
        if inStart == inEnd {
            inStart = 0
            inEnd = 0
        } else if inCapacity - inEnd < NBD.requestHeaderSize || inEnd > inCapacity / 2 {
            memmove(inBuffer, inBuffer + inStart, inEnd - inStart)
            inEnd -= inStart
            inStart = 0
        }
        guard inEnd < inCapacity else { return true }  // full of parsed-later requests: wait for capacity
        let n = recv(fd, inBuffer + inEnd, inCapacity - inEnd, 0)
        if n < 0 { return errno == EAGAIN || errno == EINTR }
        if n == 0 { return false }
        inEnd += n
        return true
    }

    /// Parses and dispatches every whole request buffered, while the in-flight limit allows.
    private func parseBuffered() {
        while !closing, partial == nil, inEnd - inStart >= NBD.requestHeaderSize {
            if lock.withLock({ inFlight >= server.config.maxInFlight }) { return }
            let header = UnsafeRawPointer(inBuffer + inStart)
            guard header.loadBE32(at: 0) == NBD.requestMagic else {
                violation()
                return
            }
            let request = NBDRequest(
                flags: NBDCommandFlags(rawValue: header.loadBE16(at: 4)), type: header.loadBE16(at: 6),
                cookie: header.loadBE64(at: 8), offset: header.loadBE64(at: 16), length: header.loadBE32(at: 24))
            inStart += NBD.requestHeaderSize
            if request.type == NBDCommand.disconnect.rawValue {
                server.metrics.count(.disconnect, bytes: 0, failed: false)
                closing = true
                return
            }
            guard request.type == NBDCommand.write.rawValue else {
                dispatch(request, payload: nil)
                continue
            }
            // Bounded before allocating: a WRITE bigger than the advertised maximum ends the connection.
            guard Int(request.length) <= server.config.maxPayloadBytes else {
                violation()
                return
            }
            let payload = IOBuffer(count: Int(request.length))
            let have = min(inEnd - inStart, payload.count)
            payload.base.copyMemory(from: inBuffer + inStart, byteCount: have)
            inStart += have
            if have == payload.count {
                dispatch(request, payload: payload)
            } else {
                partial = (request, payload, have)
            }
        }
    }

    /// A protocol violation: stop reading, answer what is in flight, close.
    private func violation() {
        server.metrics.protocolErrors.add(1, ordering: .relaxed)
        closing = true
        shutdown(fd, Int32(SHUT_RD))
    }

    /// Runs `request` on this connection's thread when it is small or nothing is buffered behind it;
    /// hands a large request with more work behind it to the worker pool, so that the pages of
    /// several large requests are compressed on several cores (docs/NBD.md has the measurements).
    private func dispatch(_ request: NBDRequest, payload: IOBuffer?) {
        lock.withLock { inFlight += 1 }
        let last = inStart == inEnd && partial == nil
        if last || Int(request.length) <= server.config.inlineBytes {
            execute(request, payload: payload)
        } else if !server.queue.trySubmit({ [self] in execute(request, payload: payload) }) {
            execute(request, payload: payload)
        }
    }
}
