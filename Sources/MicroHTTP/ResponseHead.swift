import Glibc

/// The status line and header fields of a response, as bytes.
enum ResponseHead {
    /// Writes the head of a response with `status`, `headers` and a body of `bodyCount`
    /// bytes (for HEAD, the length the GET would have had) into `out`.
    static func write(
        into out: inout ByteBuffer, status: Int, headers: [(name: String, value: String)], bodyCount: Int, date: DateLine,
        close: Bool
    ) {
        out.append("HTTP/1.1 ")
        out.append(decimal: status)
        out.append(" ")
        out.append(reason(status))
        out.append("\r\n")
        date.append(to: &out)
        // RFC 9110 8.6: no Content-Length in a 1xx or 204 response.
        if status >= 200 && status != 204 {
            out.append("Content-Length: ")
            out.append(decimal: bodyCount)
            out.append("\r\n")
        }
        for header in headers {
            out.append(header.name)
            out.append(": ")
            out.append(header.value)
            out.append("\r\n")
        }
        out.append(close ? "Connection: close\r\n\r\n" : "\r\n")
    }

    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 416: "Range Not Satisfiable"
        case 422: "Unprocessable Content"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 503: "Service Unavailable"
        case 507: "Insufficient Storage"
        default: "Status"
        }
    }
}

/// The `Date` header line (RFC 9110 6.6.1), formatted once a second per polling thread.
struct DateLine {
    private var second = -1
    private var line: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    private var length = 0

    /// Brings the line up to the current second.
    mutating func refresh() {
        let now = time(nil)
        guard now != second else { return }
        second = now
        var t = now
        var parts = tm()
        gmtime_r(&t, &parts)
        length = withUnsafeMutableBytes(of: &line) { buffer in
            strftime(buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &parts)
        }
    }

    func append(to out: inout ByteBuffer) {
        withUnsafeBytes(of: line) { out.append(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
    }
}
