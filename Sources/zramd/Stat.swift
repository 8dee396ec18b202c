import ArgumentParser
import Foundation
import Glibc

/// `zramd stat`: a zramctl-like table of a running server's devices.
struct Stat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a zramctl-like table of a running server's devices.")

    @Option(help: "The server's base URL.")
    var server = "http://127.0.0.1:7070"

    @Flag(help: "Print sizes in bytes instead of K/M/G.")
    var bytes = false

    @Flag(help: "Refresh the table every --interval seconds until Ctrl-C (redrawn in place on a terminal).")
    var watch = false

    @Option(help: "Seconds between refreshes with --watch.")
    var interval = 2.0

    func run() throws {
        guard watch else { return try printTable() }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        let terminal = isatty(STDOUT_FILENO) == 1
        while true {
            if terminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print("\(server) at \(WallClock.now())")
            try printTable()
            if !terminal { print("") }
            fflush(nil)
            usleep(useconds_t(interval * 1_000_000))
        }
    }

    /// One table of every device.
    func printTable() throws {
        let base = try BaseURL(server)
        guard let names = try JSONSerialization.jsonObject(with: try base.get("/sys/block")) as? [String] else {
            throw ValidationError("\(server)/sys/block did not answer a JSON list of devices")
        }
        var rows = [["NAME", "ALGORITHM", "DISKSIZE", "DATA", "COMPR", "TOTAL", "LIMIT", "SAME", "HUGE", "WB"]]
        for name in names {
            guard let device = try JSONSerialization.jsonObject(with: try base.get("/sys/block/\(name)")) as? [String: Any] else { continue }
            let mm = device["mm_stat"] as? [String: Int] ?? [:]
            let bd = device["bd_stat"] as? [String: Int] ?? [:]
            let algorithm = (device["comp_algorithm"] as? [String: Any])?["selected"] as? String ?? "-"
            rows.append([
                "/dev/\(name)", algorithm, size(device["disksize"] as? Int ?? 0), size(mm["orig_data_size"] ?? 0),
                size(mm["compr_data_size"] ?? 0), size(mm["mem_used_total"] ?? 0), size(mm["mem_limit"] ?? 0),
                String(mm["same_pages"] ?? 0), String(mm["huge_pages"] ?? 0), size((bd["bd_count"] ?? 0) * 4096),
            ])
        }
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
        for row in rows {
            print(
                row.enumerated().map { i, cell in
                    i < 2
                        ? cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                        : String(repeating: " ", count: widths[i] - cell.count) + cell
                }.joined(separator: " "))
        }
    }

    /// Bytes as zramctl prints them: B, K, M, G with one decimal where it helps.
    func size(_ value: Int) -> String {
        if bytes { return String(value) }
        let units = ["B", "K", "M", "G", "T"]
        var amount = Double(value), unit = 0
        while amount >= 1024, unit < units.count - 1 { amount /= 1024; unit += 1 }
        return unit == 0 ? "\(value)B" : String(format: amount < 10 ? "%.1f%@" : "%.0f%@", amount, units[unit])
    }
}

/// `http://HOST:PORT` and a blocking GET over a plain socket (the table needs nothing more).
struct BaseURL {
    let host: String
    let port: String

    init(_ text: String) throws {
        guard text.hasPrefix("http://") else { throw ValidationError("--server must be an http:// URL") }
        let authority = text.dropFirst(7).split(separator: "/", maxSplits: 1).first.map(String.init) ?? ""
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            port = authority[close...].split(separator: ":").last.map(String.init) ?? "80"
        } else {
            let parts = authority.split(separator: ":", maxSplits: 1).map(String.init)
            host = parts.first ?? "127.0.0.1"
            port = parts.count > 1 ? parts[1] : "80"
        }
    }

    /// The body of `GET path`; throws unless the status is 200.
    func get(_ path: String) throws -> Data {
        let reply = try request("GET", path)
        guard reply.status == 200 else { throw ValidationError("GET \(path): HTTP \(reply.status)") }
        return reply.body
    }
}

enum WallClock {
    /// The local time of day, for `stat --watch`.
    static func now() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
    }
}
