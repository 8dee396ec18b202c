import CMicroHTTPD

/// An HTTP method: the ones zramd answers by name, anything else as sent.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case GET, HEAD, PUT, POST, DELETE
    case other(String)

    public init(_ text: String) {
        self =
            switch text {
            case "GET": .GET
            case "HEAD": .HEAD
            case "PUT": .PUT
            case "POST": .POST
            case "DELETE": .DELETE
            default: .other(text)
            }
    }

    public var description: String {
        switch self {
        case .GET: "GET"
        case .HEAD: "HEAD"
        case .PUT: "PUT"
        case .POST: "POST"
        case .DELETE: "DELETE"
        case .other(let text): text
        }
    }

    /// An `Allow` header's value for `methods`, in the order given.
    public static func allow(_ methods: [HTTPMethod]) -> String { methods.map(\.description).joined(separator: ", ") }
}

/// One HTTP request as the handler sees it; borrowed, valid only during the handler call.
public struct Request: ~Copyable {
    public let method: HTTPMethod
    /// Path, percent-decoded by libmicrohttpd, without the query.
    public let path: String
    /// Everything after `?` as sent, undecoded; empty when there is none.
    package let rawQuery: String
    /// The request body; valid during the handler call (the job's call when offloaded).
    public let body: UnsafeRawBufferPointer
    private let source: HeaderSource

    /// Where the headers come from: the live connection, or a list (tests drive a handler
    /// without a socket, as HummingbirdTesting does).
    private enum HeaderSource {
        case connection(ConnectionRef)
        case list([(name: String, value: String)])
    }

    init(method: String, path: String, rawQuery: String, body: UnsafeRawBufferPointer, connection: ConnectionRef) {
        self.method = HTTPMethod(method)
        self.path = path
        self.rawQuery = rawQuery
        self.body = body
        source = .connection(connection)
    }

    /// A request that no connection carries, for driving a handler in tests.
    public init(
        method: HTTPMethod, path: String, query: String = "", headers: [(name: String, value: String)] = [],
        body: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0)
    ) {
        self.method = method
        self.path = path
        rawQuery = query
        self.body = body
        source = .list(headers)
    }

    /// True for HEAD: answer as for GET; only the headers (with the same Content-Length) go out.
    public var isHead: Bool { method == .HEAD }

    /// The value of header `name`, compared case-insensitively; the first one when repeated.
    public func header(_ name: String) -> String? {
        switch source {
        case .connection(let connection):
            MHD_lookup_connection_value(connection.raw, .HEADER_KIND, name).map { String(cString: $0) }
        case .list(let list):
            list.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// Every header in arrival order.
    public var headers: [(name: String, value: String)] {
        guard case .connection(let connection) = source else {
            if case .list(let list) = source { return list }
            return []
        }
        var collected: [(name: String, value: String)] = []
        withUnsafeMutablePointer(to: &collected) { list in
            _ = MHD_get_connection_values(
                connection.raw, .HEADER_KIND,
                { cls, _, key, value in
                    guard let key else { return .YES }
                    let list = cls!.assumingMemoryBound(to: [(name: String, value: String)].self)
                    list.pointee.append((String(cString: key), value.map { String(cString: $0) } ?? ""))
                    return .YES
                }, list)
        }
        return collected
    }

    /// Query items in order, `+` and `%XX` decoded; a key without `=` has an empty value.
    public var queryItems: [(name: String, value: String)] { Self.queryItems(rawQuery) }

    /// The items of an undecoded query string (what follows `?`), as `queryItems` parses them.
    public static func queryItems(_ rawQuery: String) -> [(name: String, value: String)] {
        guard !rawQuery.isEmpty else { return [] }
        return rawQuery.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (QueryDecoding.decode(parts[0]), parts.count > 1 ? QueryDecoding.decode(parts[1]) : "")
        }
    }

    /// The first query value for `name`.
    public func query(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }
}

/// `application/x-www-form-urlencoded` decoding of one query component.
enum QueryDecoding {
    static func decode(_ component: Substring) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(component.utf8.count)
        var iterator = component.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                let high = iterator.next().flatMap(hexValue)
                let low = iterator.next().flatMap(hexValue)
                if let high, let low { bytes.append(high << 4 | low) } else { bytes.append(byte) }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A libmicrohttpd connection handle that may cross to a worker thread.
///
/// `@unchecked Sendable` is safe because the worker only touches the connection while it is
/// suspended (libmicrohttpd does not process it then), and `MHD_resume_connection` is
/// documented as callable from any thread.
struct ConnectionRef: @unchecked Sendable {
    let raw: OpaquePointer
}
