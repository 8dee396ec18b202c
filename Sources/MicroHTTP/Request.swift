import Glibc

/// An HTTP method: the ones zramd answers by name, anything else as sent.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case GET, HEAD, PUT, POST, DELETE
    case other(String)

    public init(_ text: String) {
        var text = text
        self = text.withUTF8 { HTTPMethod(UnsafeRawBufferPointer($0), 0, $0.count) }
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

extension HTTPMethod {
    /// The method named by `bytes[from..<to]`.
    init(_ bytes: UnsafeRawBufferPointer, _ from: Int, _ to: Int) {
        func equals(_ name: StaticString) -> Bool {
            to - from == name.utf8CodeUnitCount && memcmp(bytes.baseAddress! + from, name.utf8Start, to - from) == 0
        }
        if equals("GET") {
            self = .GET
        } else if equals("PUT") {
            self = .PUT
        } else if equals("HEAD") {
            self = .HEAD
        } else if equals("POST") {
            self = .POST
        } else if equals("DELETE") {
            self = .DELETE
        } else {
            self = .other(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[from..<to]), as: UTF8.self))
        }
    }
}

/// One HTTP request as the handler sees it; borrowed, valid only during the handler call.
public struct Request: ~Copyable {
    public let method: HTTPMethod
    /// Path, percent-decoded, without the query.
    public let path: String
    /// Everything after `?` as sent, undecoded; empty when there is none.
    package let rawQuery: String
    /// The request body; valid during the handler call (the job's call when offloaded).
    public let body: UnsafeRawBufferPointer
    private let source: HeaderSource

    /// Where the headers come from: the header lines as received, or a list (tests drive a
    /// handler without a socket, as HummingbirdTesting does).
    private enum HeaderSource {
        case lines(UnsafeRawBufferPointer)
        case list([(name: String, value: String)])
    }

    /// A request read from a connection; `headerLines` are its header lines, which must stay
    /// in place while the request is handled.
    init(method: HTTPMethod, path: String, rawQuery: String, body: UnsafeRawBufferPointer, headerLines: UnsafeRawBufferPointer) {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.body = body
        source = .lines(headerLines)
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
        case .list(let list):
            let wanted = name.lowercased()
            return list.first { $0.name.lowercased() == wanted }?.value
        case .lines(let lines):
            return HeaderLines.value(lines, named: name)
        }
    }

    /// Every header in arrival order.
    public var headers: [(name: String, value: String)] {
        switch source {
        case .list(let list): list
        case .lines(let lines): HeaderLines.parse(lines)
        }
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

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// Header lines as `RequestHead` checked them: `name: value`, each ending in `\n` or `\r\n`.
enum HeaderLines {
    /// Calls `body` with each line's name and (trimmed) value bounds until it returns false.
    static func forEach(_ lines: UnsafeRawBufferPointer, _ body: (Range<Int>, Range<Int>) -> Bool) {
        var line = 0
        while line < lines.count {
            var end = line
            while end < lines.count, lines[end] != UInt8(ascii: "\n") { end += 1 }
            defer { line = end + 1 }
            let text = end > line && lines[end - 1] == UInt8(ascii: "\r") ? end - 1 : end
            guard text > line, let colon = (line..<text).first(where: { lines[$0] == UInt8(ascii: ":") }) else { continue }
            let (from, to) = RequestHead.trimmed(lines, colon + 1, text)
            guard body(line..<colon, from..<to) else { return }
        }
    }

    static func parse(_ lines: UnsafeRawBufferPointer) -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        forEach(lines) { name, value in
            result.append((string(lines, name), string(lines, value)))
            return true
        }
        return result
    }

    /// The first value of header `name` (compared case-insensitively), without building the others.
    static func value(_ lines: UnsafeRawBufferPointer, named name: String) -> String? {
        let wanted = Array(name.lowercased().utf8)
        var found: String?
        forEach(lines) { candidate, value in
            let matches =
                candidate.count == wanted.count
                && zip(candidate, wanted).allSatisfy { i, byte in
                    let c = lines[i]
                    return (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") ? c + 32 : c) == byte
                }
            if matches { found = string(lines, value) }
            return !matches
        }
        return found
    }

    private static func string(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}

/// Percent-decoding of a request path (`%XX` only: `+` is a plus sign in a path).
enum PathDecoding {
    static func decode(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.contains(UInt8(ascii: "%")) else { return String(decoding: bytes, as: UTF8.self) }
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count,
                let high = QueryDecoding.hexValue(bytes[i + 1]), let low = QueryDecoding.hexValue(bytes[i + 2])
            {
                decoded.append(high << 4 | low)
                i += 3
            } else {
                decoded.append(bytes[i])
                i += 1
            }
        }
        return String(decoding: decoded, as: UTF8.self)
    }
}
