import ArgumentParser
import Foundation
import Glibc

/// What the job commands share: start the attribute write as a job, follow it, cancel it on Ctrl-C.
struct JobRunner {
    let options: ClientOptions
    let device: String
    let interval: Double

    /// Runs `operation` with `body` on the server and follows it to its end.
    /// Exit status: 0 done, 1 failed or refused, 130 cancelled by Ctrl-C (1 if cancelled elsewhere).
    func run(_ operation: String, body: String) throws {
        let base = try BaseURL(options.server)
        let auth = try options.authorization(environment: "ZRAMD_ADMIN_TOKEN")
        Interrupt.catchSIGINT()
        let started = try base.request("PUT", "/sys/block/\(device)/\(operation)?async=1", body: Data(body.utf8), headers: auth)
        try started.expect(202, doing: "\(operation) on \(device)")
        guard let location = started.headers["location"] else { throw ValidationError("the server sent no Location") }
        var job = try Self.object(started)
        let id = job["id"] as? Int ?? 0
        let label = "\(operation) job \(id) on \(device)"
        var output = ProgressOutput()
        var cancelSent = false
        while true {
            let state = job["state"] as? String ?? "?"
            let pages = job["pages"] as? [String: Int] ?? [:]
            let total = pages["total"] ?? 0, examined = pages["examined"] ?? 0, processed = pages["processed"] ?? 0
            if ["done", "failed", "cancelled"].contains(state) {
                if state == "done" { output.show(label, done: 1, total: 1, detail: "\(examined)/\(total) pages") }
                output.finish()
                let bytes = "compr_data_size \(job["bytes_before"] as? Int ?? 0) -> \(job["bytes_after"] as? Int ?? 0) bytes"
                switch state {
                case "done":
                    print("\(label): done, \(processed) of \(total) pages processed (result \(job["result"] as? Int ?? 0)), \(bytes)")
                    return
                case "cancelled":
                    print("\(label): cancelled after \(examined) of \(total) pages, \(processed) processed, \(bytes)")
                    throw ExitCode(cancelSent ? 130 : 1)
                default:
                    output.finish()
                    FileHandle.standardError.write(Data("\(label): failed: \(job["error"] as? String ?? "no reason given")\n".utf8))
                    throw ExitCode(1)
                }
            }
            var detail = "\(state) \(examined)/\(total) pages, \(processed) processed"
            if let rate = job["rate_pages_per_second"] as? Double, rate > 0 { detail += ", \(Int(rate)) pages/s" }
            if let eta = job["eta_seconds"] as? Double { detail += String(format: ", ETA %.1f s", eta) }
            output.show(label, done: examined, total: max(total, 1), detail: detail)
            if Interrupt.requested, !cancelSent {
                cancelSent = true
                output.finish()
                print("\(label): cancelling (Ctrl-C)")
                fflush(nil)
                let reply = try base.request("DELETE", location, headers: auth)
                // 400: it ended meanwhile; the next poll shows how.
                try reply.expect(202, 400, doing: "cancel \(location)")
            }
            usleep(useconds_t(interval * 1_000_000))
            let reply = try base.request("GET", location)
            try reply.expect(200, doing: "GET \(location)")
            job = try Self.object(reply)
        }
    }

    static func object(_ reply: HTTPReply) throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: reply.body) as? [String: Any] else {
            throw ValidationError("the server's job is not a JSON object")
        }
        return object
    }
}

/// Options every job command takes.
struct JobOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions

    @Option(help: "The device (zram0, zram1, ...).")
    var device = "zram0"

    @Option(help: "Seconds between progress polls.")
    var interval = 0.2

    func validate() throws {
        guard interval > 0, interval <= 60 else { throw ValidationError("--interval must be in (0, 60]") }
    }

    var runner: JobRunner { JobRunner(options: client, device: device, interval: interval) }
}

/// `zramd writeback`: `echo BODY > /sys/block/zramN/writeback`, as a job with progress.
struct WritebackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writeback",
        abstract: "Write pages back to the backing store on a running server, with progress; Ctrl-C cancels.",
        discussion: "BODY is what zram's writeback attribute takes: idle, huge, huge_idle, incompressible, or type=... page_index=N page_indexes=LO-HI.")

    @OptionGroup var job: JobOptions
    @Argument(help: "The writeback body, e.g. idle or type=huge page_indexes=0-99.")
    var body: [String]

    func run() throws { try job.runner.run("writeback", body: body.joined(separator: " ")) }
}

/// `zramd recompress`.
struct RecompressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recompress",
        abstract: "Recompress pages with the secondary algorithms on a running server, with progress; Ctrl-C cancels.",
        discussion: "BODY is what zram's recompress attribute takes: type=idle|huge|huge_idle threshold=SIZE max_pages=N algo=NAME|priority=N, all optional.")

    @OptionGroup var job: JobOptions
    @Argument(help: "The recompress body (empty: every page).")
    var body: [String] = []

    func run() throws { try job.runner.run("recompress", body: body.joined(separator: " ")) }
}

/// `zramd compact`.
struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact", abstract: "Compact a device's allocator on a running server.")

    @OptionGroup var job: JobOptions

    func run() throws { try job.runner.run("compact", body: "1") }
}

/// `zramd idle`.
struct IdleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "idle", abstract: "Mark pages idle on a running server: all, or those not accessed for AGE seconds.")

    @OptionGroup var job: JobOptions
    @Argument(help: "all, or an age in seconds.")
    var age = "all"

    func run() throws { try job.runner.run("idle", body: age) }
}
