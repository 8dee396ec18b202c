import MicroHTTP
import ZramDevice

extension Errno {
    /// The HTTP status for this errno: the one table of SPEC section 4.
    public var httpStatus: Int {
        switch self {
        case .EINVAL, .ERANGE, .E2BIG: 400
        case .EBUSY, .ENODEV: 409
        case .EAGAIN, .EIO: 503
        case .ENOMEM, .ENOSPC: 507
        case .ENOENT: 404
        case .EACCES: 405
        }
    }
}

/// The text of an error body.
public enum ErrorText {
    /// `zramd: <ERRNO>: <why>` and a newline, always one line: control characters that a
    /// request put into the reason (a path, an attribute body) are escaped (`\n`, `\u{1B}`).
    public static func body(_ error: ZramError) -> String {
        line(error.errno.rawValue, error.reason)
    }

    /// `zramd: <errno>: <why>` and a newline for any errno name, `why` escaped as in `body`:
    /// the format of the HTTP engine's own errors (408, 413, 414, 431, 503) too.
    public static func line(_ errno: String, _ why: String) -> String {
        var reason = ""
        for scalar in why.unicodeScalars {
            switch scalar {
            case "\n": reason += "\\n"
            case "\r": reason += "\\r"
            case "\t": reason += "\\t"
            case _ where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}":
                reason += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: reason.unicodeScalars.append(scalar)
            }
        }
        return "zramd: \(errno): \(reason)\n"
    }
}

/// Error bodies as zramd sends them: `zramd: EINVAL: <why>`.
enum ErrorResponse {
    /// The response for a refused request.
    static func make(_ error: ZramError, allow: String? = nil) -> Response {
        var headers: [(name: String, value: String)] = []
        if error.errno == .EAGAIN || error.errno == .EIO { headers.append(("Retry-After", "1")) }
        if let allow { headers.append(("Allow", allow)) }
        return Response(status: error.deviceMissing ? 404 : error.errno.httpStatus, headers: headers, text: ErrorText.body(error))
    }

    /// 404 for a device that does not exist.
    static func noDevice(_ name: String) -> Response {
        make(ZramError.noDevice(name))
    }

    /// 405 with the methods the path takes.
    static func wrongMethod(_ method: HTTPMethod, allow methods: [HTTPMethod], hint: String = "") -> Response {
        let allow = HTTPMethod.allow(methods)
        return make(ZramError(.EACCES, "\(method) is not allowed here (allowed: \(allow))\(hint)"), allow: allow)
    }

    /// 404 for a path zramd does not serve.
    static func notFound(_ path: String) -> Response {
        make(ZramError(.ENOENT, "no such path \(path)"))
    }
}
