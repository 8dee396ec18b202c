import MicroHTTP
import ZramDevice

/// Routes zramd's HTTP API (SPEC section 4) to the device registry.
///
/// Cheap requests are answered inline on the engine's polling threads; anything that
/// can be slow (slow codecs, pages in SQLite, batches, attribute writes, walks over every
/// slot) is offloaded to a worker, so no connection waits behind another's work.
public final class ZramRouter: HTTPHandler {
    let registry: DeviceRegistry
    let tokens: Tokens
    let metrics: ServerMetrics
    /// The most pages one batch request may carry.
    let maxBatchPages: Int
    /// Post-processing runs started with `?async=1` (JobRoutes.swift).
    public let jobs = JobManager()

    public init(registry: DeviceRegistry, tokens: Tokens = Tokens(), metrics: ServerMetrics, maxBatchPages: Int = 4096) {
        self.registry = registry
        self.tokens = tokens
        self.metrics = metrics
        self.maxBatchPages = maxBatchPages
        metrics.addSource { [jobs, registry] in jobs.series(devices: registry.all) }
    }

    /// The token check, as soon as the headers are complete: a request without the right
    /// token is answered 401 before any of its body is read.
    public func admit(_ request: borrowing Request) -> Response? {
        tokens.check(request, against: tokens.required(method: request.method, path: request.path))
    }

    public func route(_ request: borrowing Request) -> Dispatch {
        // The hot path, /dev/zram<id>/pages/<index>, is parsed without building strings.
        if let page = PagePath(request.path) {
            if let denied = tokens.check(request, against: tokens.data) { return .inline(denied, route: "unauthorized") }
            guard let device = registry.device(page.device) else {
                return .inline(ErrorResponse.noDevice("zram\(page.device)"), route: "page")
            }
            return routePage(request, device, page.index)
        }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        switch parts.first {
        case "dev":
            if let denied = tokens.check(request, against: tokens.data) { return .inline(denied, route: "unauthorized") }
            return routeDev(request, Array(parts.dropFirst()))
        case "sys":
            let changes = request.method == .PUT || request.method == .POST
            if changes, let denied = tokens.check(request, against: tokens.admin) {
                return .inline(denied, route: "unauthorized")
            }
            return routeSys(request, Array(parts.dropFirst()))
        case "metrics" where parts.count == 1:
            guard request.method == .GET || request.isHead else {
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: "metrics")
            }
            return .inline(metrics.exposition(devices: registry.all), route: "metrics")
        case "jobs":
            return routeJobs(request, Array(parts.dropFirst()))
        case "ui" where parts.count == 1:
            return routeUI(request)
        case "healthz" where parts.count == 1:
            guard request.method == .GET || request.isHead else {
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: "healthz")
            }
            return .inline(Response(status: 200, text: "ok\n"), route: "healthz")
        default:
            return .inline(ErrorResponse.notFound(request.path), route: "unknown")
        }
    }

    /// The device named `zram<id>`, or the 404 to send.
    func device(named name: String) -> Result<ZramDevice, NoDevice> {
        guard let id = RouteParsing.deviceID(name), let device = registry.device(id) else {
            return .failure(NoDevice(name: name))
        }
        return .success(device)
    }

    struct NoDevice: Error { let name: String }
}

/// `/dev/zram<id>/pages/<index>` with both numbers in canonical decimal, read from the UTF-8 bytes.
struct PagePath {
    let device: Int
    let index: Int

    init?(_ path: String) {
        var bytes = path.utf8.makeIterator()
        for expected in "/dev/zram".utf8 where bytes.next() != expected { return nil }
        guard let device = Self.number(&bytes, until: UInt8(ascii: "/")) else { return nil }
        for expected in "pages/".utf8 where bytes.next() != expected { return nil }
        guard let index = Self.number(&bytes, until: nil) else { return nil }
        self.device = device
        self.index = index
    }

    /// Digits up to `terminator` (consumed) or the end; nil for none, a leading zero or overflow.
    private static func number(_ bytes: inout String.UTF8View.Iterator, until terminator: UInt8?) -> Int? {
        var value = 0, digits = 0
        while let byte = bytes.next() {
            if byte == terminator { break }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), !(digits == 1 && value == 0) else { return nil }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}

/// The router's parsers, public so that the fuzzer (`Fuzz/`) drives the same code.
package enum RouteParsing {
    /// `(device, index)` of `/dev/zram<id>/pages/<index>` with both numbers in canonical
    /// decimal (no sign, no leading zero, within `Int`); nil for any other path.
    package static func pagePath(_ path: String) -> (device: Int, index: Int)? {
        PagePath(path).map { ($0.device, $0.index) }
    }

    /// N of a device name `zramN` (canonical decimal); nil for anything else.
    package static func deviceID(_ name: String) -> Int? {
        guard name.hasPrefix("zram"), let id = Int(name.dropFirst(4)), id >= 0, String(id) == name.dropFirst(4) else {
            return nil
        }
        return id
    }
}
