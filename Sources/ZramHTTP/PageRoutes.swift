import MicroHTTP
import ZramDevice

/// `/dev/zram<id>/pages/<index>` and `/dev/zram<id>/pages?from=…`.
extension ZramRouter {
    static let octetStream: [(name: String, value: String)] = [("Content-Type", "application/octet-stream")]

    func routeDev(_ request: borrowing Request, _ parts: [String]) -> Dispatch {
        guard parts.count >= 2, parts[1] == "pages" else { return .inline(ErrorResponse.notFound(request.path), route: "unknown") }
        let device: ZramDevice
        switch self.device(named: parts[0]) {
        case .success(let found): device = found
        case .failure(let missing): return .inline(ErrorResponse.noDevice(missing.name), route: "page")
        }
        if parts.count == 2 { return routeBatch(request, device) }
        // Canonical /dev/zram<id>/pages/<index> went the fast way (PagePath); here come the
        // rest: other integers (negative, leading zeros) go to the device, which counts them.
        guard parts.count == 3 else { return .inline(ErrorResponse.notFound(request.path), route: "unknown") }
        // The method before the index, as on the fast path: POST …/pages/x is 405, not 400.
        guard [.GET, .HEAD, .PUT, .DELETE].contains(request.method) else {
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD, .PUT, .DELETE]), route: "page")
        }
        guard let index = Int(parts[2]) else {
            return .inline(ErrorResponse.make(ZramError(.EINVAL, "page index \"\(parts[2])\" is not an integer")), route: "page")
        }
        return routePage(request, device, index)
    }

    /// Single-page requests. Each is tried inline first, with nothing allowed to wait: a
    /// busy slot, a busy codec stream or a page in SQLite (found under the slot lock) sends
    /// the request to a worker instead, so a polling thread never sleeps behind slow work.
    func routePage(_ request: borrowing Request, _ device: ZramDevice, _ index: Int) -> Dispatch {
        switch request.method {
        case .GET:
            if let response = Self.getPageInline(device, index) { return .inline(response, route: "page_get") }
            return .offload(route: "page_get") { _ in Self.getPage(device, index) }
        case .HEAD:
            if let response = Self.headPage(device, index, inline: true) { return .inline(response, route: "page_head") }
            return .offload(route: "page_head") { _ in Self.headPage(device, index, inline: false)! }
        case .PUT:
            if let response = Self.inline({ () throws(ZramError) in try device.writeIfFree(index, request.body) }) {
                return .inline(response, route: "page_put")
            }
            return .offload(route: "page_put") { request in Self.putPage(device, index, request.body) }
        case .DELETE:
            if let response = Self.inline({ () throws(ZramError) in try device.discardIfFree(index) }) {
                return .inline(response, route: "page_delete")
            }
            return .offload(route: "page_delete") { _ in Self.run { () throws(ZramError) in try device.discard(index) } }
        default:
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD, .PUT, .DELETE]), route: "page")
        }
    }

    /// 204 or the error for an inline attempt; nil when it would have waited.
    static func inline(_ body: () throws(ZramError) -> Inline<Void>) -> Response? {
        do {
            guard case .done = try body() else { return nil }
            return Response(status: 204)
        } catch {
            return ErrorResponse.make(error)
        }
    }

    /// 204 when `body` succeeds, the error response otherwise.
    static func run(_ body: () throws(ZramError) -> Void) -> Response {
        do {
            try body()
            return Response(status: 204)
        } catch {
            return ErrorResponse.make(error)
        }
    }

    static func putPage(_ device: ZramDevice, _ index: Int, _ body: UnsafeRawBufferPointer) -> Response {
        run { () throws(ZramError) in try device.write(index, body) }
    }

    static func getPage(_ device: ZramDevice, _ index: Int) -> Response {
        getPage(device, index) { (page) throws(ZramError) -> Bool? in try device.read(index, into: page) }!
    }

    /// GET on a polling thread; nil when it would have waited.
    static func getPageInline(_ device: ZramDevice, _ index: Int) -> Response? {
        getPage(device, index) { (page) throws(ZramError) -> Bool? in
            guard case .done(let found) = try device.readIfFree(index, into: page) else { return nil }
            return found
        }
    }

    /// A GET answered by `read`, which fills the page and says whether the slot held one (nil:
    /// it would have waited, and there is no response).
    private static func getPage(
        _ device: ZramDevice, _ index: Int,
        _ read: (UnsafeMutableRawBufferPointer) throws(ZramError) -> Bool?
    ) -> Response? {
        do {
            var found: Bool?
            // Decompressed straight into the response buffer: the page is never copied again.
            let body = try ResponseBody(capacity: device.pageSize) { (page) throws(ZramError) -> Int in
                found = try read(page)
                return page.count
            }
            guard let found else { return nil }
            guard found else { return ErrorResponse.make(ZramError(.ENOENT, "slot \(index) holds no page")) }
            return Response(status: 200, headers: octetStream, body: body)
        } catch {
            return ErrorResponse.make(error)
        }
    }

    /// HEAD; with `inline`, nil when the slot is busy.
    static func headPage(_ device: ZramDevice, _ index: Int, inline: Bool) -> Response? {
        do {
            let slot: SlotInfo?
            if inline {
                guard case .done(let info) = try device.slotInfoIfFree(index) else { return nil }
                slot = info
            } else {
                slot = try device.slotInfo(index)
            }
            guard let info = slot else {
                return ErrorResponse.make(ZramError(.ENOENT, "slot \(index) holds no page"))
            }
            // HEAD sends GET's Content-Length; the bytes themselves are never sent.
            let body = ResponseBody(capacity: device.pageSize) { page in
                page.initializeMemory(as: UInt8.self, repeating: 0)
                return page.count
            }
            return Response(
                status: 200,
                headers: octetStream + [
                    ("X-Zram-Flags", info.flags), ("X-Zram-Compressed-Size", String(info.compressedSize)),
                    ("X-Zram-Priority", String(info.priority)),
                ], body: body)
        } catch {
            return ErrorResponse.make(error)
        }
    }

    /// `PUT …/pages?from=I` (k pages in the body) and `GET …/pages?from=I&count=K`.
    func routeBatch(_ request: borrowing Request, _ device: ZramDevice) -> Dispatch {
        let method = request.method
        guard method == .GET || method == .PUT || request.isHead else {
            return .inline(ErrorResponse.wrongMethod(method, allow: [.GET, .HEAD, .PUT]), route: "batch")
        }
        let from = request.query("from"), count = request.query("count")
        let extra = request.queryItems.map(\.name).filter { !["from", "count"].contains($0) }
        let maxPages = maxBatchPages
        let route = method == .PUT ? "batch_put" : "batch_get"
        return .offload(route: route) { request in
            do throws(ZramError) {
                guard extra.isEmpty else { throw ZramError(.EINVAL, "unknown query parameter \(extra[0])") }
                // A negative from= is out of range: the device counts it, as a single page's.
                guard let from, let first = Int(from) else { throw ZramError(.EINVAL, "from= must be an integer") }
                if method == .PUT {
                    return try Self.putBatch(device, first, request.body, maxPages: maxPages)
                }
                guard let count, let pages = Int(count), pages > 0 else {
                    throw ZramError(.EINVAL, "count= must be a positive integer")
                }
                return try Self.getBatch(device, first, pages, maxPages: maxPages)
            } catch {
                return ErrorResponse.make(error)
            }
        }
    }

    static func putBatch(_ device: ZramDevice, _ first: Int, _ body: UnsafeRawBufferPointer, maxPages: Int) throws(ZramError) -> Response {
        try device.write(from: first, body, maxPages: maxPages)
        return Response(status: 204)
    }

    static func getBatch(_ device: ZramDevice, _ first: Int, _ pages: Int, maxPages: Int) throws(ZramError) -> Response {
        guard pages <= maxPages else { throw ZramError(.E2BIG, "\(pages) pages in one batch (at most \(maxPages))") }
        let body = try ResponseBody(capacity: pages * device.pageSize) { (all) throws(ZramError) -> Int in
            try device.read(from: first, count: pages, into: all, maxPages: maxPages)
            return all.count
        }
        return Response(status: 200, headers: octetStream, body: body)
    }
}
