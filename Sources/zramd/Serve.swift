import ZSync
import ArgumentParser
import Foundation
import Glibc
import Logging
import MicroHTTP
import ZramDevice
import ZramHTTP
import ZramNBD

/// `zramd serve`: the server.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve pages and zram attributes over HTTP (the default command).")

    @Option(help: "Address to listen on: HOST:PORT, [IPv6]:PORT or :PORT (all interfaces).")
    var listen = "127.0.0.1:7070"

    @Option(help: "Devices to create at start (zram0, zram1, ...).")
    var numDevices = 1

    @Option(help: "Capacity of each device in bytes; K, M, G, T suffixes (binary). 0 leaves the devices uninitialised.")
    var disksize = "1G"

    @Option(help: "Primary compression algorithm: lzo, lz4, lz4hc, zstd or deflate.")
    var compAlgorithm = "lz4"

    @Option(help: "Page size in bytes: 4096, 16384 or 65536.")
    var pageSize = 4096

    @Option(help: "Directory for backing stores and dictionaries; created if missing. Attribute values that name files resolve inside it.")
    var dataDir = "zramd-data"

    @Option(help: "Backing store file name inside --data-dir for each device (zramN-<name>); none by default.")
    var backingDev: String?

    @Option(help: "Memory limit of each device in bytes, with suffixes; 0 means none.")
    var memLimit = "0"

    @Option(help: "Worker threads for slow requests (slow codecs, SQLite reads, batches, recompress, writeback). Default: cores.")
    var workers = ServerConfig.cores

    @Option(help: "Slow requests waiting for a worker beyond which new ones get 503 EAGAIN with Retry-After (per pool: workers, background).")
    var maxQueuedRequests = 64

    @Option(help: "HTTP polling threads, which answer fast requests inline. Default: cores.")
    var httpThreads = ServerConfig.cores

    @Option(help: "Open connections at most.")
    var maxConnections = 1024

    @Option(help: "Seconds a connection may stay idle before it is closed.")
    var idleTimeout = 30

    @Option(help: "Seconds from accepting a connection to its complete request head, however slowly it trickles in; past it the client gets 408.")
    var headerTimeout = 10.0

    @Option(
        help:
            "Request-body bytes all connections together may hold in memory at once, with K, M, G suffixes; past it requests get 503 with Retry-After before their body is read."
    )
    var maxBodyMemory = "256M"

    @Option(help: "Pages one batch request may carry; request bodies are limited to this many pages.")
    var maxBatchPages = 4096

    @Flag(help: "Save every device into its backing store at SIGTERM and restore it at the next start (needs --backing-dev; a zramd extension).")
    var persist = false

    @Option(help: "File holding the bearer token for state-changing /sys requests (or set ZRAMD_ADMIN_TOKEN).")
    var adminTokenFile: String?

    @Option(help: "File holding the bearer token for /dev page requests (or set ZRAMD_DATA_TOKEN); none by default.")
    var dataTokenFile: String?

    @Option(help: "Also serve every device as an NBD export (zram0, ...) on HOST:PORT; off unless given (port 10809 when only a host is given).")
    var nbdListen: String?

    func validate() throws {
        guard [4096, 16384, 65536].contains(pageSize) else { throw ValidationError("--page-size must be 4096, 16384 or 65536") }
        guard numDevices >= 0, numDevices <= 256 else { throw ValidationError("--num-devices must be 0...256") }
        guard workers > 0, httpThreads > 0 else { throw ValidationError("--workers and --http-threads must be positive") }
        guard maxQueuedRequests > 0 else { throw ValidationError("--max-queued-requests must be positive") }
        guard maxBatchPages > 0 else { throw ValidationError("--max-batch-pages must be positive") }
        _ = try ListenAddress(listen)
        if let nbdListen { _ = try ListenAddress(nbd: nbdListen) }
        guard headerTimeout > 0 else { throw ValidationError("--header-timeout must be positive") }
        guard let bodyMemory = Self.bytes(maxBodyMemory), bodyMemory >= maxBatchPages * pageSize else {
            throw ValidationError("--max-body-memory must be a size of at least --max-batch-pages × --page-size (\(maxBatchPages * pageSize) bytes)")
        }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var log = Logger(label: "zramd")
        log.logLevel = .info
        let tokens = Tokens(
            admin: try Secrets.token(file: adminTokenFile, environment: "ZRAMD_ADMIN_TOKEN"),
            data: try Secrets.token(file: dataTokenFile, environment: "ZRAMD_DATA_TOKEN"))
        try Secrets.makeDirectory(dataDir)

        MallocTuning.keepBuffers(upTo: maxBatchPages * pageSize)
        let metrics = ServerMetrics()
        var template = DeviceConfig(pageSize: pageSize, primary: compAlgorithm)
        template.codecObserver = metrics
        template.persist = persist
        template.blockExport = nbdListen != nil
        let registry = DeviceRegistry(dataDir: dataDir, template: template)
        for _ in 0..<numDevices {
            let device = registry.hotAdd()
            do {
                if let backingDev { try device.writeAttribute("backing_dev", "\(device.name)-\(backingDev)") }
                // The limit first: a restored device loads pages back within it.
                try device.writeAttribute("mem_limit", memLimit)
                if disksize != "0" { try device.writeAttribute("disksize", disksize) }
            } catch {
                throw ValidationError("\(device.name): \(error)")
            }
            if let backing = device.backingStatus {
                log.info("\(device.name): \(backing.openReport)")
                if let restored = backing.restoreReport { log.info("\(device.name): \(restored)") }
            }
            log.info(
                "\(device.name): disksize \(device.diskSize), \(device.primaryAlgorithm.name), backing_dev \((try? device.readAttribute("backing_dev"))?.trimmingCharacters(in: .newlines) ?? "none")"
            )
        }

        let address = try ListenAddress(listen)
        let config = ServerConfig(
            host: address.host, port: address.port, threadPoolSize: httpThreads, workerCount: workers,
            maxQueuedJobs: maxQueuedRequests,
            connectionLimit: maxConnections, idleTimeoutSeconds: idleTimeout, maxBodyBytes: maxBatchPages * pageSize,
            headerTimeoutSeconds: headerTimeout, maxBodyMemory: Self.bytes(maxBodyMemory) ?? 0,
            errorLine: { ErrorText.line($0, $1) })
        let router = ZramRouter(registry: registry, tokens: tokens, metrics: metrics, maxBatchPages: maxBatchPages)
        let signals = ShutdownSignals()
        let server: HTTPServer
        do {
            server = try HTTPServer(config: config, handler: router) { metrics.observe($0) }
        } catch {
            throw ValidationError("cannot listen on \(listen): \(error)")
        }
        log.info(
            "listening on \(address.host.contains(":") ? "[\(address.host)]" : address.host):\(server.port)\(tokens.admin == nil ? " (no admin token: /sys writes are open to anyone who can connect)" : "")"
        )
        var nbd: NBDServer?
        if let nbdListen {
            let address = try ListenAddress(nbd: nbdListen)
            do {
                nbd = try NBDServer(
                    config: NBDServerConfig(host: address.host, port: address.port, workers: workers), registry: registry)
            } catch {
                server.stop()
                throw ValidationError("--nbd-listen \(nbdListen): \(error)")
            }
            metrics.addSource(nbd!.metrics.series)
            log.info("NBD exports on \(address.host.contains(":") ? "[\(address.host)]" : address.host):\(nbd!.port)")
        }
        let signal = signals.wait()
        log.info("\(signal): finishing requests in flight")
        nbd?.stop()
        server.stop()
        // Jobs stop at their next batch boundary, leaving every slot consistent.
        if !router.jobs.cancelAll(waiting: 30) { log.warning("a job did not stop within 30 s") }
        if persist { Self.saveImages(registry.all, log) }
        for device in registry.all { device.reset() }
        log.info("stopped")
    }

    /// `--persist` at shutdown: each device into its backing store, with what it cost.
    static func saveImages(_ devices: [ZramDevice], _ log: Logger) {
        for device in devices {
            let start = MonotonicClock.nanoseconds()
            do {
                guard let saved = try device.saveImage() else {
                    log.warning("\(device.name): not saved (--persist needs an initialised device with a backing_dev)")
                    continue
                }
                let ms = (MonotonicClock.nanoseconds() - start) / 1_000_000
                log.info("\(device.name): saved \(saved.pages) page(s), \(saved.bytes) bytes copied from memory, in \(ms) ms")
            } catch {
                log.error("\(device.name): not saved, the next start begins empty: \(error)")
            }
        }
    }

    /// Bytes with an optional K/M/G suffix (binary units), nil when it is not one.
    static func bytes(_ text: String) -> Int? {
        var digits = Substring(text)
        var shift = 0
        if let last = digits.last, let s = ["k": 10, "m": 20, "g": 30][last.lowercased()] {
            shift = s
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= Int.max >> shift else {
            return nil
        }
        return n << shift
    }
}
