import ArgumentParser
import Foundation
import Glibc
import Synchronization

/// One HTTP exchange's outcome.
struct HTTPReply {
    let status: Int
    let headers: [String: String]
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
}

extension BaseURL {
    /// Sends `method path` with `body` on a fresh connection and reads the whole reply.
    func request(_ method: String, _ path: String, body: Data = Data(), headers: [(String, String)] = []) throws -> HTTPReply {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &found) == 0, let address = found else {
            throw ValidationError("cannot resolve \(host):\(port)")
        }
        defer { freeaddrinfo(found) }
        let fd = socket(address.pointee.ai_family, address.pointee.ai_socktype, 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard connect(fd, address.pointee.ai_addr, address.pointee.ai_addrlen) == 0 else {
            throw ValidationError("cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var request = Data((head + "\r\n").utf8)
        request.append(body)
        try request.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n < 0, errno == EINTR { continue }
                guard n > 0 else { throw ValidationError("\(method) \(path): send failed: \(String(cString: strerror(errno)))") }
                sent += n
            }
        }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            response.append(contentsOf: chunk[..<n])
        }
        guard let end = response.range(of: Data("\r\n\r\n".utf8)) else {
            throw ValidationError("\(method) \(path): no HTTP response")
        }
        let lines = String(decoding: response[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        guard let status = lines.first?.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
            throw ValidationError("\(method) \(path): malformed status line")
        }
        var fields: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return HTTPReply(status: status, headers: fields, body: Data(response[end.upperBound...]))
    }
}

/// Ctrl-C for the client commands: the first SIGINT only sets a flag, which the command's
/// loop looks at between requests (to cancel its job or stop between batches).
enum Interrupt {
    private static let flag = Atomic<Bool>(false)

    /// Installs the handler.
    static func catchSIGINT() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Interrupt.flag.store(true, ordering: .relaxed) }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    static var requested: Bool { flag.load(ordering: .relaxed) }
}

/// A progress bar on a terminal; plain lines (at most one per 10% or per `every` seconds) otherwise.
struct ProgressOutput {
    let terminal = isatty(STDOUT_FILENO) == 1
    private var lastLine = Date.distantPast
    private var lastStep = -1
    private var drawn = false

    /// Shows `done` of `total` with a label and details.
    mutating func show(_ label: String, done: Int, total: Int, detail: String, every: Double = 1) {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 0
        let percent = String(format: "%5.1f%%", fraction * 100)
        if terminal {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            print("\r\(label) [\(bar)] \(percent) \(detail)\u{1B}[K", terminator: "")
            drawn = true
        } else {
            let step = Int(fraction * 10)
            guard step != lastStep || Date().timeIntervalSince(lastLine) >= every else { return }
            lastStep = step
            lastLine = Date()
            print("\(label) \(percent.trimmingCharacters(in: .whitespaces)) \(detail)")
        }
        fflush(nil)
    }

    /// Ends the bar's line (on a terminal) before a final message.
    mutating func finish() {
        if terminal, drawn { print("") }
        drawn = false
        fflush(nil)
    }
}

/// The server and token options the client commands share.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server's base URL.")
    var server = "http://127.0.0.1:7070"

    @Option(help: "File holding the bearer token (or set ZRAMD_ADMIN_TOKEN for jobs, ZRAMD_DATA_TOKEN for pages).")
    var tokenFile: String?

    /// The Authorization header, if a token is configured.
    func authorization(environment: String) throws -> [(String, String)] {
        guard let token = try Secrets.token(file: tokenFile, environment: environment) else { return [] }
        return [("Authorization", "Bearer \(token)")]
    }
}

extension HTTPReply {
    /// Throws the server's `zramd: ERRNO: why` line unless the status is one of `expected`.
    func expect(_ expected: Int..., doing what: String) throws {
        guard expected.contains(status) else {
            let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
            throw ClientFailure(description: "\(what): HTTP \(status): \(reason.isEmpty ? "no reason given" : reason)")
        }
    }
}

/// The server refused a client command's request: `Error: <why>` and exit status 1.
struct ClientFailure: Error, CustomStringConvertible {
    let description: String
}
