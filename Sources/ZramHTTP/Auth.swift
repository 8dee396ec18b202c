import MicroHTTP

/// Bearer tokens: `admin` guards every state-changing `/sys/...` request, `data` (when set)
/// every `/dev/...` request.
public struct Tokens: Sendable {
    public var admin: String?
    public var data: String?

    public init(admin: String? = nil, data: String? = nil) {
        self.admin = admin
        self.data = data
    }

    /// nil when `request` may proceed under `required`; the 401 response otherwise.
    func check(_ request: borrowing Request, against required: String?) -> Response? {
        guard let required else { return nil }
        let presented = request.header("Authorization").flatMap { value -> String? in
            let prefix = "Bearer "
            return value.hasPrefix(prefix) ? String(value.dropFirst(prefix.count)) : nil
        }
        if let presented, Self.constantTimeEqual(presented, required) { return nil }
        return Response(
            status: 401, headers: [("WWW-Authenticate", "Bearer realm=\"zramd\"")],
            text: ErrorText.line("EACCES", presented == nil ? "a bearer token is required" : "wrong token"))
    }

    /// The token `method` on `path` needs (nil: none), as the router applies them: `data` for
    /// anything under `/dev`, `admin` for PUT and POST under `/sys`.
    func required(method: HTTPMethod, path: String) -> String? {
        guard admin != nil || data != nil else { return nil }
        switch path.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: true).first {
        case "dev": return data
        case "sys": return method == .PUT || method == .POST ? admin : nil
        default: return nil
        }
    }

    /// Compares without an early exit, so the time taken says nothing about where they differ.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        constantTimeEqual(Array(a.utf8), Array(b.utf8))
    }

    /// The comparison itself, over any bytes: it reads every byte of both, wherever they differ
    /// (`ZramHTTPTests` counts the reads).
    static func constantTimeEqual<A: RandomAccessCollection<UInt8>, B: RandomAccessCollection<UInt8>>(_ x: A, _ y: B) -> Bool
    where A.Index == Int, B.Index == Int {
        var difference = UInt(bitPattern: x.count ^ y.count)
        for i in 0..<max(x.count, y.count) {
            difference |= UInt((i < x.count ? x[x.startIndex + i] : 0) ^ (i < y.count ? y[y.startIndex + i] : 0))
        }
        return difference == 0
    }
}
