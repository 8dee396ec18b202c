import Glibc

/// A response body in one `malloc`ed buffer, sent from where it was written.
public struct ResponseBody: ~Copyable {
    private let base: UnsafeMutableRawPointer?
    /// Bytes in the body.
    public let count: Int

    private init(base: UnsafeMutableRawPointer?, count: Int) {
        self.base = base
        self.count = count
    }

    /// An empty body.
    public init() { self.init(base: nil, count: 0) }

    /// A body holding a copy of `bytes` (the one copy a response makes).
    public init(copying bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let source = bytes.baseAddress else { self.init(); return }
        let buffer = malloc(bytes.count)!
        buffer.copyMemory(from: source, byteCount: bytes.count)
        self.init(base: buffer, count: bytes.count)
    }

    /// A body of UTF-8 text.
    public init(text: String) {
        let utf8 = text.utf8
        self.init(capacity: utf8.count) { buffer in
            buffer.copyBytes(from: utf8)
            return utf8.count
        }
    }

    /// A body written in place: `fill` gets `capacity` bytes and returns how many it used.
    ///
    /// This is how a page is decompressed straight into the response, with no copy after.
    public init<E: Error>(capacity: Int, fill: (UnsafeMutableRawBufferPointer) throws(E) -> Int) throws(E) {
        guard capacity > 0 else { self.init(); return }
        let buffer = malloc(capacity)!
        let used: Int
        do {
            used = try fill(UnsafeMutableRawBufferPointer(start: buffer, count: capacity))
        } catch {
            free(buffer)
            throw error
        }
        precondition(used >= 0 && used <= capacity, "fill returned \(used) for a \(capacity)-byte body")
        self.init(base: buffer, count: used)
    }

    /// The bytes, valid while the body lives.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    deinit { free(base) }
}

/// What the server sends back: status, headers, body.
public struct Response: ~Copyable {
    /// HTTP status code.
    public var status: Int
    /// Header fields in order (the engine adds `Content-Length`, `Date` and `Connection`).
    public var headers: [(name: String, value: String)]
    /// The body; for HEAD only its length is sent.
    public var body: ResponseBody

    /// A response with an explicit body.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: consuming ResponseBody = ResponseBody()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A response whose body is a copy of `bytes`.
    public init(status: Int, headers: [(name: String, value: String)] = [], bytes: UnsafeRawBufferPointer) {
        self.init(status: status, headers: headers, body: ResponseBody(copying: bytes))
    }

    /// A `text/plain` response.
    public init(status: Int, headers: [(name: String, value: String)] = [], text: String) {
        self.init(
            status: status, headers: [("Content-Type", "text/plain; charset=utf-8")] + headers,
            body: ResponseBody(text: text))
    }
}
