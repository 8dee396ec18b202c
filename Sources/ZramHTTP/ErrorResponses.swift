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

/// Error bodies as zramd sends them: `zramd: EINVAL: <why>`.
enum ErrorResponse {
    /// The response for a refused request.
    static func make(_ error: ZramError, allow: String? = nil) -> Response {
        var headers: [(name: String, value: String)] = []
        if error.errno == .EAGAIN || error.errno == .EIO { headers.append(("Retry-After", "1")) }
        if let allow { headers.append(("Allow", allow)) }
        return Response(status: error.errno.httpStatus, headers: headers, text: "zramd: \(error)\n")
    }

    /// 404 for a device that does not exist.
    static func noDevice(_ name: String) -> Response {
        Response(status: 404, text: "zramd: ENODEV: there is no \(name)\n")
    }

    /// 405 with the methods the path takes.
    static func wrongMethod(_ method: String, allow: String, hint: String = "") -> Response {
        make(ZramError(.EACCES, "\(method) is not allowed here (allowed: \(allow))\(hint)"), allow: allow)
    }

    /// 404 for a path zramd does not serve.
    static func notFound(_ path: String) -> Response {
        make(ZramError(.ENOENT, "no such path \(path)"))
    }
}
