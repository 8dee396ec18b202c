import ArgumentParser
import Foundation
import Glibc

/// Options `put` and `get` share.
struct PageOptions: ParsableArguments {
    @OptionGroup var client: ClientOptions

    @Option(help: "The device (zram0, zram1, ...).")
    var device = "zram0"

    @Option(help: "The first page index.")
    var from: Int

    @Option(help: "The server's page size in bytes.")
    var pageSize = 4096

    @Option(help: "Pages per request (at most the server's --max-batch-pages).")
    var batch = 256

    func validate() throws {
        guard from >= 0 else { throw ValidationError("--from must not be negative") }
        guard [4096, 16384, 65536].contains(pageSize) else { throw ValidationError("--page-size must be 4096, 16384 or 65536") }
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    /// Moves `count` pages in requests of `batch` pages with a progress line; `move(done, n)`
    /// moves pages `from + done ..< from + done + n`. Ctrl-C stops between requests (exit 130).
    func inBatches(_ label: String, count: Int, _ move: (_ done: Int, _ n: Int) throws -> Void) throws {
        Interrupt.catchSIGINT()
        var output = ProgressOutput()
        var done = 0
        output.show(label, done: 0, total: max(count, 1), detail: "0/\(count) pages")
        while done < count {
            if Interrupt.requested {
                output.finish()
                print("\(label): stopped (Ctrl-C) after \(done) of \(count) pages")
                throw ExitCode(130)
            }
            let n = min(batch, count - done)
            try move(done, n)
            done += n
            output.show(label, done: done, total: count, detail: "\(done)/\(count) pages")
        }
        output.finish()
    }
}

/// `zramd put FILE --from N`: a file into consecutive pages.
struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Write FILE into pages FROM, FROM+1, ... of a device on a running server, with progress; Ctrl-C stops between batches.",
        discussion: "The last page is padded with zeros to a whole page.")

    @OptionGroup var pages: PageOptions
    @Argument(help: "The file to write.")
    var file: String

    func run() throws {
        let base = try BaseURL(pages.client.server)
        let auth = try pages.client.authorization(environment: "ZRAMD_DATA_TOKEN")
        guard let handle = FileHandle(forReadingAtPath: file) else { throw ValidationError("cannot read \(file)") }
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        try handle.seek(toOffset: 0)
        let count = (size + pages.pageSize - 1) / pages.pageSize
        let label = "put \(file) -> \(pages.device) pages \(pages.from)..<\(pages.from + count)"
        try pages.inBatches(label, count: count) { done, n in
            var chunk = try handle.read(upToCount: n * pages.pageSize) ?? Data()
            if chunk.count < n * pages.pageSize { chunk.append(Data(count: n * pages.pageSize - chunk.count)) }
            let reply = try base.request("PUT", "/dev/\(pages.device)/pages?from=\(pages.from + done)", body: chunk, headers: auth)
            try reply.expect(204, doing: "PUT pages \(pages.from + done)..<\(pages.from + done + n)")
        }
        print("\(label): \(count) pages (\(size) bytes) written")
    }
}

/// `zramd get FILE --from N --count K`: consecutive pages into a file.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Read COUNT pages from FROM of a device on a running server into FILE, with progress; Ctrl-C stops between batches.")

    @OptionGroup var pages: PageOptions
    @Option(help: "Pages to read.")
    var count: Int
    @Argument(help: "The file to write (replaced).")
    var file: String

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() throws {
        let base = try BaseURL(pages.client.server)
        let auth = try pages.client.authorization(environment: "ZRAMD_DATA_TOKEN")
        guard FileManager.default.createFile(atPath: file, contents: nil),
            let handle = FileHandle(forWritingAtPath: file)
        else { throw ValidationError("cannot write \(file)") }
        defer { try? handle.close() }
        let label = "get \(pages.device) pages \(pages.from)..<\(pages.from + count) -> \(file)"
        try pages.inBatches(label, count: count) { done, n in
            let reply = try base.request("GET", "/dev/\(pages.device)/pages?from=\(pages.from + done)&count=\(n)", headers: auth)
            try reply.expect(200, doing: "GET pages \(pages.from + done)..<\(pages.from + done + n)")
            guard reply.body.count == n * pages.pageSize else {
                throw ValidationError("GET pages: \(reply.body.count) bytes for \(n) pages of \(pages.pageSize) (is --page-size right?)")
            }
            try handle.write(contentsOf: reply.body)
        }
        print("\(label): \(count) pages (\(count * pages.pageSize) bytes) read")
    }
}
