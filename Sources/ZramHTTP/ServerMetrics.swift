import MicroHTTP
import Prometheus
import ZComp
import ZSync
import ZramDevice

/// `/metrics`: zram's statistics per device, requests per route and status, latencies of
/// requests and codecs, in Prometheus text exposition.
public final class ServerMetrics: CodecObserver {
    let registry = PrometheusCollectorRegistry()
    /// Counters mirrored from device statistics: the last value seen per series.
    private let mirrored = Locked<[String: (counter: Counter, value: Int)]>([:])
    private static let requestBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
        .milliseconds(500), .seconds(2), .seconds(10),
    ]
    private static let codecBuckets: [Duration] = [
        .microseconds(1), .microseconds(2), .microseconds(5), .microseconds(10), .microseconds(20),
        .microseconds(50), .microseconds(100), .microseconds(500), .milliseconds(2), .milliseconds(10),
        .milliseconds(50),
    ]

    /// Other front ends' series (NBD), read at every scrape.
    private let sources = Locked<[@Sendable () -> [ExternalSeries]]>([])

    public init() {}

    /// Adds series that another front end reports; `source` is called at every scrape.
    public func addSource(_ source: @escaping @Sendable () -> [ExternalSeries]) {
        sources.withLock { $0.append(source) }
    }

    /// Counts a finished request (the server's completion hook).
    public func observe(_ outcome: RequestOutcome) {
        requests.record(
            route: outcome.route.isEmpty ? "server" : outcome.route, status: outcome.status, nanoseconds: outcome.durationNanos)
    }

    /// The histogram one stream pool's compressions or decompressions go to (pools of the
    /// same algorithm share it).
    public func timer(algorithm: String, operation: CodecOperation) -> any CodecTimer {
        codecs.withLock { made in
            let key = CodecKey(algorithm: algorithm, operation: operation.rawValue)
            if let found = made[key] { return HistogramTimer(histogram: found) }
            let histogram = LockFreeHistogram(bounds: Self.codecBuckets)
            made[key] = histogram
            return HistogramTimer(histogram: histogram)
        }
    }

    /// The router's routes, the most frequent first (any other is counted too, through a lock;
    /// RouterTests checks that every route it sees is here).
    static let routes = [
        "page_get", "page_put", "page_head", "page_delete", "page", "batch", "batch_get", "batch_put", "attr_get", "attr_put", "attr", "metrics",
        "healthz", "device", "devices", "sys", "hot_add", "hot_remove", "job", "job_start", "job_cancel", "jobs", "ui",
        "classes", "block_state", "unauthorized", "unknown", "server",
    ]

    private let requests = RequestSeries(routes: ServerMetrics.routes, bounds: ServerMetrics.requestBuckets)

    private struct CodecKey: Hashable {
        let algorithm: String
        let operation: String
    }

    private let codecs = Locked<[CodecKey: LockFreeHistogram]>([:])

    private struct HistogramTimer: CodecTimer {
        let histogram: LockFreeHistogram
        func record(nanoseconds: UInt64) { histogram.record(nanoseconds: nanoseconds) }
    }

    /// The lock-free series, in the text exposition format.
    private func hotSeries() -> String {
        var text = "# HELP zramd_http_requests_total HTTP requests answered, by route and status\n"
        text += "# TYPE zramd_http_requests_total counter\n"
        let routes = requests.routes
        for route in routes {
            for (status, count) in route.statuses {
                text += "zramd_http_requests_total{route=\"\(route.name)\",status=\"\(status)\"} \(count)\n"
            }
        }
        text += "# HELP zramd_http_request_duration_seconds Time from request line to response, by route\n"
        text += "# TYPE zramd_http_request_duration_seconds histogram\n"
        for route in routes {
            route.durations.render("zramd_http_request_duration_seconds", labels: "route=\"\(route.name)\"", into: &text)
        }
        text += "# HELP zramd_codec_duration_seconds Time to compress or decompress one page, by algorithm\n"
        text += "# TYPE zramd_codec_duration_seconds histogram\n"
        let codecs = codecs.withLock { $0.sorted { ($0.key.algorithm, $0.key.operation) < ($1.key.algorithm, $1.key.operation) } }
        for (key, histogram) in codecs {
            histogram.render(
                "zramd_codec_duration_seconds", labels: "algorithm=\"\(key.algorithm)\",operation=\"\(key.operation)\"",
                into: &text)
        }
        return text
    }

    /// The exposition text with every device's statistics as of now.
    func exposition(devices: [ZramDevice]) -> Response {
        for device in devices { update(device) }
        for source in sources.withLock({ $0 }) {
            for series in source() { mirror(series) }
        }
        // `body:`, not `text:`, which would add a second Content-Type.
        return Response(
            status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")],
            body: ResponseBody(text: registry.emitToString() + hotSeries()))
    }

    private func update(_ device: ZramDevice) {
        let labels = [("device", device.name)]
        let mm = device.mmStat, io = device.ioStat, bd = device.bdStat
        func gauge(_ name: String, _ value: Int, _ help: String) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(Double(value))
        }
        gauge("zram_disksize_bytes", device.diskSize, "Device capacity (disksize)")
        gauge("zram_orig_data_size_bytes", mm.origDataSize, "Uncompressed size of the stored pages")
        gauge("zram_compr_data_size_bytes", mm.comprDataSize, "Compressed size of the stored pages")
        gauge("zram_mem_used_total_bytes", mm.memUsedTotal, "Memory the allocator holds")
        gauge("zram_mem_limit_bytes", mm.memLimit, "mem_limit, 0 when unlimited")
        gauge("zram_mem_used_max_bytes", mm.memUsedMax, "Peak of mem_used_total")
        gauge("zram_same_pages", mm.samePages, "Pages stored as one repeated word")
        gauge("zram_huge_pages", mm.hugePages, "Pages stored uncompressed")
        gauge("zram_bd_count_pages", bd.count, "Backing store use, in 4 KiB units")
        let limit = device.writebackLimit
        gauge("zram_writeback_limit_enabled", limit.enabled ? 1 : 0, "1 when writeback_limit applies")
        gauge("zram_writeback_limit_pages", limit.remaining, "Writeback budget left, in 4 KiB units")
        counter("zram_pages_compacted_total", device, mm.pagesCompacted, "Pages freed by compaction")
        counter("zram_huge_pages_since_total", device, mm.hugePagesSince, "Pages ever stored uncompressed")
        counter("zram_failed_reads_total", device, io.failedReads, "Reads that failed")
        counter("zram_failed_writes_total", device, io.failedWrites, "Writes that failed")
        counter("zram_invalid_io_total", device, io.invalidIO, "Requests with a bad index or length")
        counter("zram_notify_free_total", device, io.notifyFree, "Pages freed by discard")
        counter("zram_bd_reads_pages_total", device, bd.reads, "Backing store reads, in 4 KiB units")
        counter("zram_bd_writes_pages_total", device, bd.writes, "Backing store writes, in 4 KiB units")
        // The tiering extensions (zramd's own).
        let tiering = device.tieringState, tier = device.tierStat
        gauge("zramd_auto_writeback_enabled", tiering.autoWriteback ? 1 : 0, "1 when automatic writeback is on")
        gauge("zramd_auto_writeback_high_watermark_bytes", tiering.highBytes, "Memory use that starts automatic writeback (0 without mem_limit)")
        gauge("zramd_auto_writeback_low_watermark_bytes", tiering.lowBytes, "Memory use automatic writeback brings memory under")
        gauge("zramd_promotion_enabled", tiering.promote ? 1 : 0, "1 when hot written-back pages are brought back into memory")
        gauge("zramd_eviction_enabled", tiering.evict ? 1 : 0, "1 when cold pages are dropped at mem_limit")
        counter("zramd_auto_written_back_pages_total", device, tier.autoWrittenBack, "Pages written back by automatic writeback")
        counter("zramd_promoted_pages_total", device, tier.promoted, "Written-back pages brought back into memory")
        counter("zramd_writes_to_backing_pages_total", device, tier.writesToBacking, "Writes at mem_limit stored straight in the backing store")
        counter("zramd_evicted_pages_total", device, tier.evicted, "Pages dropped at mem_limit by eviction")
        registry.makeGauge(
            descriptor: Self.descriptor("zramd_auto_writeback_busy_seconds", "Time automatic writeback has spent since the device was initialised"),
            labels: labels
        ).set(Double(tier.autoWritebackMilliseconds) / 1000)
    }

    /// Mirrors a device counter: increments by what it grew; a drop (reset) starts the series anew.
    private func counter(_ name: String, _ device: ZramDevice, _ value: Int, _ help: String) {
        let key = name + "|" + device.name
        mirrored.withLock { series in
            if let (counter, last) = series[key], value >= last {
                counter.increment(by: Int64(value - last))
                series[key] = (counter, value)
                return
            }
            if let (stale, _) = series[key] { registry.unregisterCounter(stale) }
            let counter = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: [("device", device.name)])
            counter.increment(by: Int64(value))
            series[key] = (counter, value)
        }
    }

    /// Sets a gauge, or mirrors a counter the way `counter` does, for one external series.
    private func mirror(_ series: ExternalSeries) {
        guard series.counter else {
            registry.makeGauge(descriptor: Self.descriptor(series.name, series.help), labels: series.labels).set(Double(series.value))
            return
        }
        let key = series.name + "|" + series.labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        mirrored.withLock { known in
            if let (counter, last) = known[key], series.value >= last {
                counter.increment(by: Int64(series.value - last))
                known[key] = (counter, series.value)
                return
            }
            if let (stale, _) = known[key] { registry.unregisterCounter(stale) }
            let counter = registry.makeCounter(descriptor: Self.descriptor(series.name, series.help), labels: series.labels)
            counter.increment(by: Int64(series.value))
            known[key] = (counter, series.value)
        }
    }

    /// A full series name split the way the library wants it: the unit is the last word.
    static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        let cut = name.lastIndex(of: "_")!
        return MetricNameDescriptor(
            metricName: String(name[..<cut]), unitName: String(name[name.index(after: cut)...]), helpText: help)
    }
}

/// One series another front end reports to `/metrics` (name ending in its unit, as `descriptor` expects).
public struct ExternalSeries: Sendable {
    public let name: String
    public let help: String
    public let labels: [(String, String)]
    public let value: Int
    /// A counter (mirrored by increments) rather than a gauge.
    public let counter: Bool

    public init(name: String, help: String, labels: [(String, String)], value: Int, counter: Bool) {
        self.name = name
        self.help = help
        self.labels = labels
        self.value = value
        self.counter = counter
    }
}
