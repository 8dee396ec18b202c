import Glibc

/// Checks and parses a request head (request line and headers) on the raw bytes received:
/// the front door's peek at a connection's first head, and every head a connection reads.
///
/// Strict, as RFC 9112 allows a server to be: one `Host` in HTTP/1.1, `Content-Length` as
/// plain digits and never with `Transfer-Encoding`, which may only be `chunked`; a head
/// that fails is answered in one well-formed response and the connection closed.
enum RequestHead {
    /// What the bytes received so far amount to.
    enum Verdict: Equatable {
        /// The head is not complete yet (and within the limits so far).
        case incomplete
        /// A complete, well-formed head.
        case complete(Parsed)
        /// Answer `status` with `errno` and `why`, then close.
        case reject(status: Int, errno: String, why: String)
    }

    /// Where a complete head's parts lie in the bytes inspected (offsets from their start).
    struct Parsed: Equatable {
        var methodStart = 0, methodEnd = 0
        /// The request target: path, then `?` and the query when there is one.
        var targetStart = 0, targetEnd = 0
        /// The first header line, and the end of the head (just past its empty line).
        var headersStart = 0, end = 0
        var http11 = false
        var contentLength: Int?
        var chunked = false
        /// `Connection: close`, or HTTP/1.0 without `Connection: keep-alive`.
        var close = false
        /// `Expect: 100-continue`.
        var expectContinue = false
    }

    struct Limits {
        var maxRequestLine: Int
        var maxHead: Int
        var maxQueryItems: Int
    }

    /// Judges the request head at the start of `bytes`.
    static func inspect(_ bytes: UnsafeRawBufferPointer, _ limits: Limits) -> Verdict {
        // RFC 9112 2.2: empty lines before the request line are ignored.
        let start = blankPrefix(bytes)
        guard let lineEnd = find(lf, in: bytes, from: start, before: min(bytes.count, start + limits.maxRequestLine + 1)) else {
            return bytes.count - start > limits.maxRequestLine
                ? .reject(status: 414, errno: "E2BIG", why: "request line over \(limits.maxRequestLine) bytes") : .incomplete
        }
        guard let headEnd = endOfHead(bytes, from: lineEnd) else {
            return bytes.count - start > limits.maxHead
                ? .reject(status: 431, errno: "E2BIG", why: "request head over \(limits.maxHead) bytes") : .incomplete
        }
        if headEnd - start > limits.maxHead {
            return .reject(status: 431, errno: "E2BIG", why: "request head over \(limits.maxHead) bytes")
        }
        var parsed = Parsed(headersStart: lineEnd + 1, end: headEnd, http11: isHTTP11(bytes, start, trimCR(bytes, lineEnd)))
        if let refusal = checkRequestLine(bytes, start, trimCR(bytes, lineEnd), limits, &parsed) ?? checkHeaders(bytes, &parsed) {
            return refusal
        }
        return .complete(parsed)
    }

    /// The number of non-empty `&`-separated items of a raw query.
    static func queryItemCount<Bytes: Sequence<UInt8>>(_ rawQuery: Bytes) -> Int {
        var items = 0
        var inItem = false
        for byte in rawQuery {
            if byte == UInt8(ascii: "&") {
                inItem = false
            } else if !inItem {
                inItem = true
                items += 1
            }
        }
        return items
    }

    /// The number of CR and LF bytes at the start of `bytes` (the empty lines a head may follow).
    static func blankPrefix(_ bytes: UnsafeRawBufferPointer) -> Int {
        var count = 0
        while count < bytes.count, bytes[count] == cr || bytes[count] == lf { count += 1 }
        return count
    }

    /// `from..<to` without the spaces and tabs at either end (a header value's optional whitespace).
    static func trimmed(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) -> (Int, Int) {
        var a = from
        var b = to
        while a < b, bytes[a] == space || bytes[a] == UInt8(ascii: "\t") { a += 1 }
        while b > a, bytes[b - 1] == space || bytes[b - 1] == UInt8(ascii: "\t") { b -= 1 }
        return (a, b)
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")

    private static func find(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int, before end: Int) -> Int? {
        var i = from
        while i < end {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    /// Index just past the empty line that ends the head (`\n\n` or `\n\r\n`), searching from
    /// the request line's `\n`.
    private static func endOfHead(_ bytes: UnsafeRawBufferPointer, from firstLF: Int) -> Int? {
        var i = firstLF
        while i < bytes.count {
            if bytes[i] == lf {
                if i + 1 < bytes.count, bytes[i + 1] == lf { return i + 2 }
                if i + 2 < bytes.count, bytes[i + 1] == cr, bytes[i + 2] == lf { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    private static func trimCR(_ bytes: UnsafeRawBufferPointer, _ end: Int) -> Int {
        end > 0 && bytes[end - 1] == cr ? end - 1 : end
    }

    private static func isHTTP11(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Bool {
        end - start >= 8 && equal(bytes, end - 8, "HTTP/1.1")
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ at: Int, _ text: StaticString) -> Bool {
        guard at >= 0, at + text.utf8CodeUnitCount <= bytes.count else { return false }
        for i in 0..<text.utf8CodeUnitCount where bytes[at + i] != text.utf8Start[i] { return false }
        return true
    }

    private static func equalFolded(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int, _ lowercase: StaticString) -> Bool {
        guard to - from == lowercase.utf8CodeUnitCount else { return false }
        for i in 0..<(to - from) {
            var byte = bytes[from + i]
            if byte >= UInt8(ascii: "A"), byte <= UInt8(ascii: "Z") { byte += 32 }
            if byte != lowercase.utf8Start[i] { return false }
        }
        return true
    }

    /// `METHOD SP target SP HTTP/1.x`, and the target's query items within the limit.
    private static func checkRequestLine(
        _ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ limits: Limits, _ parsed: inout Parsed
    ) -> Verdict? {
        let bad = Verdict.reject(status: 400, errno: "EINVAL", why: "malformed request line")
        guard let firstSpace = find(space, in: bytes, from: start, before: end), firstSpace > start,
            let secondSpace = find(space, in: bytes, from: firstSpace + 1, before: end), secondSpace > firstSpace + 1,
            end - secondSpace - 1 == 8, equal(bytes, secondSpace + 1, "HTTP/1."),
            bytes[end - 1] == UInt8(ascii: "0") || bytes[end - 1] == UInt8(ascii: "1")
        else { return bad }
        for i in start..<firstSpace where !(bytes[i] >= UInt8(ascii: "A") && bytes[i] <= UInt8(ascii: "Z")) { return bad }
        for i in (firstSpace + 1)..<secondSpace where bytes[i] <= space || bytes[i] == 0x7F { return bad }
        if let question = find(UInt8(ascii: "?"), in: bytes, from: firstSpace + 1, before: secondSpace) {
            if queryItemCount(bytes[(question + 1)..<secondSpace]) > limits.maxQueryItems {
                return .reject(status: 400, errno: "EINVAL", why: "more than \(limits.maxQueryItems) query items")
            }
        }
        (parsed.methodStart, parsed.methodEnd) = (start, firstSpace)
        (parsed.targetStart, parsed.targetEnd) = (firstSpace + 1, secondSpace)
        return nil
    }

    /// Every header line is `name: value`; HTTP/1.1 has exactly one `Host`; `Content-Length`
    /// is plain decimal digits, agreeing when repeated; not both it and `Transfer-Encoding`.
    /// Records the body's framing, `Connection` and `Expect` in `parsed`.
    private static func checkHeaders(_ bytes: UnsafeRawBufferPointer, _ parsed: inout Parsed) -> Verdict? {
        let headEnd = parsed.end
        let http11 = parsed.http11
        var hosts = 0
        var length: (from: Int, to: Int)?
        var chunked = false
        var keepAlive = false
        var line = parsed.headersStart
        while line < headEnd {
            guard let lineEnd = find(lf, in: bytes, from: line, before: headEnd) else { break }
            let end = trimCR(bytes, lineEnd)
            defer { line = lineEnd + 1 }
            if end == line { break }  // the empty line
            guard let colon = find(UInt8(ascii: ":"), in: bytes, from: line, before: end), colon > line else {
                return .reject(status: 400, errno: "EINVAL", why: "malformed header line")
            }
            for i in line..<colon where bytes[i] <= space || bytes[i] >= 0x7F {
                return .reject(status: 400, errno: "EINVAL", why: "malformed header name")
            }
            let (valueStart, valueEnd) = trimmed(bytes, colon + 1, end)
            if equalFolded(bytes, line, colon, "host") {
                hosts += 1
            } else if equalFolded(bytes, line, colon, "content-length") {
                let digits = valueEnd - valueStart
                guard digits >= 1, digits <= 18 else {
                    return .reject(status: 400, errno: "EINVAL", why: "Content-Length is not a decimal number")
                }
                for i in valueStart..<valueEnd where !(bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9")) {
                    return .reject(status: 400, errno: "EINVAL", why: "Content-Length is not a decimal number")
                }
                if let seen = length, !(seen.to - seen.from == digits && (0..<digits).allSatisfy({ bytes[seen.from + $0] == bytes[valueStart + $0] })) {
                    return .reject(status: 400, errno: "EINVAL", why: "conflicting Content-Length headers")
                }
                length = (valueStart, valueEnd)
            } else if equalFolded(bytes, line, colon, "transfer-encoding") {
                guard equalFolded(bytes, valueStart, valueEnd, "chunked"), !chunked else {
                    return .reject(status: 400, errno: "EINVAL", why: "only one Transfer-Encoding: chunked is accepted")
                }
                chunked = true
            } else if equalFolded(bytes, line, colon, "connection") {
                forEachToken(bytes, valueStart, valueEnd) { from, to in
                    if equalFolded(bytes, from, to, "close") { parsed.close = true }
                    if equalFolded(bytes, from, to, "keep-alive") { keepAlive = true }
                }
            } else if equalFolded(bytes, line, colon, "expect") {
                parsed.expectContinue = equalFolded(bytes, valueStart, valueEnd, "100-continue")
            }
        }
        if http11 && hosts != 1 {
            return .reject(status: 400, errno: "EINVAL", why: hosts == 0 ? "HTTP/1.1 request without Host" : "more than one Host header")
        }
        if chunked && length != nil {
            return .reject(status: 400, errno: "EINVAL", why: "both Content-Length and Transfer-Encoding")
        }
        if let length {
            var value = 0
            for i in length.from..<length.to { value = value * 10 + Int(bytes[i] - UInt8(ascii: "0")) }
            parsed.contentLength = value
        }
        parsed.chunked = chunked
        if !http11 && !keepAlive { parsed.close = true }
        return nil
    }

    /// Calls `body` with the bounds of each comma-separated token of a header value.
    private static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int, _ body: (Int, Int) -> Void) {
        var start = from
        while start < to {
            var end = start
            while end < to, bytes[end] != UInt8(ascii: ",") { end += 1 }
            let (a, b) = trimmed(bytes, start, end)
            if b > a { body(a, b) }
            start = end + 1
        }
    }
}
