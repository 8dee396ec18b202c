import Foundation
import MicroHTTP
import Testing
import ZramDevice
@testable import ZramHTTP

/// The router driven without a socket (HummingbirdTesting's way): build the request, route
/// it, look at where it runs and what it answers. The black-box suites prove the wiring.
struct RouterHarness {
    let registry: DeviceRegistry
    let router: ZramRouter
    let dataDir: String

    init(tokens: Tokens = Tokens(), algorithm: String = "lz4", backing: Bool = false) throws {
        var template = "/tmp/zramd-router-XXXXXX".utf8CString
        dataDir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        registry = DeviceRegistry(dataDir: dataDir, template: DeviceConfig(primary: algorithm))
        let device = registry.hotAdd()
        if backing { try device.writeAttribute("backing_dev", "bd.sqlite") }
        try device.writeAttribute("disksize", "1M")
        router = ZramRouter(registry: registry, tokens: tokens, metrics: ServerMetrics())
    }

    /// Where a request ran and what it answered.
    struct Outcome {
        enum Place: Equatable { case inline, offload, background }
        let place: Place
        let route: String
        let status: Int
        let headers: [(name: String, value: String)]
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    func send(
        _ method: HTTPMethod, _ path: String, query: String = "", headers: [(name: String, value: String)] = [],
        body: [UInt8] = []
    ) -> Outcome {
        body.withUnsafeBytes { bytes in
            let request = Request(method: method, path: path, query: query, headers: headers, body: bytes)
            if let refusal = router.admit(request) { return Self.outcome(.inline, "admit", refusal) }
            let outcome: Outcome
            switch router.route(request) {
            case .inline(let response, let route): outcome = Self.outcome(.inline, route, response)
            case .offload(let route, let job): outcome = Self.outcome(.offload, route, job(request))
            case .background(let route, let job): outcome = Self.outcome(.background, route, job(request))
            }
            // The metrics count the listed routes without a lock: every route must be listed.
            #expect(ServerMetrics.routes.contains(outcome.route), "route \(outcome.route) is not in ServerMetrics.routes")
            return outcome
        }
    }

    private static func outcome(_ place: Outcome.Place, _ route: String, _ response: consuming Response) -> Outcome {
        Outcome(place: place, route: route, status: response.status, headers: response.headers, body: Array(response.body.bytes))
    }
}

@Suite struct RouterTests {
    static let page: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 / 7) }

    @Test func routesAndWhereEachRuns() throws {
        let h = try RouterHarness()
        var r = h.send(.PUT, "/dev/zram0/pages/3", body: Self.page)
        #expect(r.status == 204 && r.place == .inline && r.route == "page_put", "lz4 compresses inline")
        r = h.send(.GET, "/dev/zram0/pages/3")
        #expect(r.status == 200 && r.place == .inline && r.body == Self.page)
        r = h.send(.HEAD, "/dev/zram0/pages/3")
        #expect(r.status == 200 && r.place == .inline && r.header("X-Zram-Flags") == "......")
        #expect(h.send(.GET, "/dev/zram0/pages", query: "from=0&count=4").place == .offload)
        #expect(h.send(.PUT, "/sys/block/zram0/mem_limit", body: Array("1M".utf8)).place == .offload)
        for trigger in ["idle", "compact", "recompress", "writeback"] {
            #expect(h.send(.PUT, "/sys/block/zram0/\(trigger)", body: Array("all".utf8)).place == .background, "\(trigger)")
        }
        #expect(h.send(.GET, "/sys/block/zram0/mm_stat").place == .inline)
        r = h.send(.DELETE, "/dev/zram0/pages/3")
        #expect(r.status == 204 && r.place == .inline)
        #expect(h.send(.GET, "/dev/zram0/pages/3").status == 404)
        #expect(h.send(.GET, "/healthz").text == "ok\n")
    }

    @Test func slowCodecsAndWrittenBackPagesGoToWorkers() throws {
        let zstd = try RouterHarness(algorithm: "zstd")
        #expect(zstd.send(.PUT, "/dev/zram0/pages/0", body: Self.page).place == .offload, "zstd does not compress inline")
        let wb = try RouterHarness(backing: true)
        #expect(wb.send(.PUT, "/dev/zram0/pages/1", body: Self.page).place == .inline)
        #expect(wb.send(.PUT, "/sys/block/zram0/writeback", body: Array("page_index=1".utf8)).status == 204)
        let r = wb.send(.GET, "/dev/zram0/pages/1")
        #expect(r.place == .offload && r.status == 200 && r.body == Self.page, "a page in SQLite is read on a worker")
    }

    @Test func methodsAndAllowLists() throws {
        let h = try RouterHarness()
        for (method, path, allow) in [
            (HTTPMethod.POST, "/dev/zram0/pages/0", "GET, HEAD, PUT, DELETE"),
            (.DELETE, "/healthz", "GET, HEAD"), (.GET, "/sys/class/zram-control/hot_add", "POST"),
            (.PUT, "/sys/block/zram0/mm_stat", "GET, HEAD"), (.GET, "/sys/block/zram0/reset", "PUT, POST"),
            (.other("PATCH"), "/metrics", "GET, HEAD"),
        ] {
            let r = h.send(method, path)
            #expect(r.status == 405 && r.header("Allow") == allow, "\(method) \(path): \(r.status) \(r.header("Allow") ?? "-")")
            #expect(r.text.hasPrefix("zramd: EACCES: \(method) is not allowed here"))
        }
    }

    @Test func errorsMapToStatuses() throws {
        let h = try RouterHarness()
        let cases: [(HTTPMethod, String, String, Int, String)] = [
            (.PUT, "/sys/block/zram0/disksize", "2M", 409, "EBUSY"),
            (.PUT, "/sys/block/zram0/mem_limit", "lots", 400, "EINVAL"),
            (.GET, "/dev/zram0/pages/99999", "", 400, "ERANGE"),
            (.GET, "/dev/zram7/pages/0", "", 404, "ENODEV"),
            (.GET, "/sys/block/zram0/no_such", "", 404, "ENOENT"),
            (.PUT, "/sys/block/zram0/writeback", "huge", 409, "ENODEV"),
            (.GET, "/nowhere", "", 404, "ENOENT"),
            (.PUT, "/sys/block/zram0/writeback_limit?async=", "7", 400, "EINVAL"),
        ]
        for (method, target, body, status, errno) in cases {
            let parts = target.split(separator: "?", maxSplits: 1).map(String.init)
            let (path, query) = (parts[0], parts.count > 1 ? parts[1] : "")
            let r = h.send(method, path, query: query, body: Array(body.utf8))
            #expect(r.status == status && r.text.hasPrefix("zramd: \(errno): "), "\(method) \(path): \(r.status) \(r.text)")
        }
    }

    @Test func tokensAreCheckedBeforeAnything() throws {
        let h = try RouterHarness(tokens: Tokens(admin: "adm1n", data: "d4ta"))
        #expect(h.send(.PUT, "/sys/block/zram0/mem_limit", body: Array("1M".utf8)).status == 401)
        #expect(h.send(.PUT, "/sys/block/zram0/mem_limit", headers: [("Authorization", "Bearer d4ta")], body: Array("1M".utf8)).status == 401)
        #expect(h.send(.PUT, "/sys/block/zram0/mem_limit", headers: [("Authorization", "Bearer adm1n")], body: Array("1M".utf8)).status == 204)
        #expect(h.send(.GET, "/sys/block/zram0/mem_limit").status == 200, "reads of /sys are open")
        #expect(h.send(.GET, "/dev/zram0/pages/0").status == 401)
        #expect(h.send(.GET, "/dev/zram0/pages/0", headers: [("authorization", "Bearer d4ta")]).status == 404)
    }
}
