import Foundation
import MicroHTTP
import ZramDevice

/// `/sys/block/zram<id>[/<attr>]`, `/sys/class/zram-control/…`, `/sys/kernel/debug/…`.
extension ZramRouter {
    static let textPlain: [(name: String, value: String)] = [("Content-Type", "text/plain; charset=utf-8")]

    func routeSys(_ request: borrowing Request, _ parts: [String]) -> Dispatch {
        switch (parts.first, parts.count) {
        case ("block", 1):
            guard request.method == .GET || request.isHead else {
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: "devices")
            }
            let names = registry.all.map { "\"\($0.name)\"" }.joined(separator: ",")
            return .inline(Response(status: 200, headers: [("Content-Type", "application/json")], body: ResponseBody(text: "[\(names)]\n")), route: "devices")
        case ("block", 2), ("block", 3):
            return withDevice(parts[1], request.path) { device in
                parts.count == 2 ? deviceJSON(request, device) : attribute(request, device, parts[2])
            }
        case ("class", 3) where parts[1] == "zram-control":
            return control(request, parts[2])
        case ("kernel", 5) where parts[1] == "debug" && parts[2] == "zsmalloc" && parts[4] == "classes":
            return withDevice(parts[3], request.path) { device in
                debugView(request, "classes") { () throws(ZramError) in try device.classesTable() }
            }
        case ("kernel", 5) where parts[1] == "debug" && parts[2] == "zram" && parts[4] == "block_state":
            return withDevice(parts[3], request.path) { device in
                debugView(request, "block_state") { () throws(ZramError) in try device.blockState() }
            }
        default:
            return .inline(ErrorResponse.notFound(request.path), route: "unknown")
        }
    }

    private func withDevice(_ name: String, _ path: String, _ body: (ZramDevice) -> Dispatch) -> Dispatch {
        switch device(named: name) {
        case .success(let device): body(device)
        case .failure(let missing): .inline(ErrorResponse.noDevice(missing.name), route: "sys")
        }
    }

    /// `GET` shows an attribute inline; `PUT`/`POST` writes it on a worker (writes can be
    /// slow: disksize, reset, recompress, writeback, compact, idle walk every slot).
    private func attribute(_ request: borrowing Request, _ device: ZramDevice, _ name: String) -> Dispatch {
        guard let info = ZramDevice.attributeInfo[name] else {
            return .inline(ErrorResponse.make(ZramError(.ENOENT, "\(device.name) has no attribute \(name)")), route: "attr")
        }
        switch request.method {
        case .GET, .HEAD:
            guard info.access.contains(.read) else {
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.PUT, .POST], hint: "; \(name) is write-only"), route: "attr_get")
            }
            do {
                return .inline(Response(status: 200, headers: Self.textPlain, body: ResponseBody(text: try device.readAttribute(name))), route: "attr_get")
            } catch {
                return .inline(ErrorResponse.make(error), route: "attr_get")
            }
        case .PUT, .POST:
            guard info.access.contains(.write) else {
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD], hint: "; \(name) is read-only"), route: "attr_put")
            }
            if Self.wantsJob(request, name) { return startJob(request, device, name) }
            let job: @Sendable (borrowing Request) -> Response = { request in
                guard let text = String(validating: request.body, as: UTF8.self) else {
                    return ErrorResponse.make(ZramError(.EINVAL, "the body is not UTF-8 text"))
                }
                return Self.run { () throws(ZramError) in try device.writeAttribute(name, text) }
            }
            // Post-processing walks every slot and can run for seconds (zstd-19 recompression):
            // it goes to the low-priority background workers so serving keeps the CPU.
            return info.cost == .maintenance ? .background(route: "attr_put", job: job) : .offload(route: "attr_put", job: job)
        default:
            return .inline(
                ErrorResponse.wrongMethod(request.method, allow: info.access.contains(.write) ? [.GET, .HEAD, .PUT, .POST] : [.GET, .HEAD]), route: "attr")
        }
    }

    /// `hot_add` (POST; reading it creates a device in sysfs, which GET must not do) and `hot_remove`.
    private func control(_ request: borrowing Request, _ name: String) -> Dispatch {
        let registry = self.registry
        switch (name, request.method) {
        case ("hot_add", .POST):
            return .offload(route: "hot_add") { _ in
                Response(status: 200, headers: Self.textPlain, body: ResponseBody(text: "\(registry.hotAdd().id)\n"))
            }
        case ("hot_add", _):
            return .inline(
                ErrorResponse.wrongMethod(request.method, allow: [.POST], hint: "; reading hot_add creates a device, so over HTTP it takes POST"),
                route: "hot_add")
        case ("hot_remove", .POST), ("hot_remove", .PUT):
            return .offload(route: "hot_remove") { request in
                guard let text = String(validating: request.body, as: UTF8.self) else {
                    return ErrorResponse.make(ZramError(.EINVAL, "the body is not UTF-8 text"))
                }
                return Self.run { () throws(ZramError) in try registry.hotRemove(body: text) }
            }
        case ("hot_remove", _):
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.POST, .PUT]), route: "hot_remove")
        default:
            return .inline(ErrorResponse.notFound(request.path), route: "unknown")
        }
    }

    /// The debug views walk every slot or class: answered on a worker.
    private func debugView(_ request: borrowing Request, _ route: String, _ text: @escaping @Sendable () throws(ZramError) -> String) -> Dispatch {
        guard request.method == .GET || request.isHead else {
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: route)
        }
        return .offload(route: route) { _ in
            do throws(ZramError) {
                return Response(status: 200, headers: Self.textPlain, body: ResponseBody(text: try text()))
            } catch {
                return ErrorResponse.make(error)
            }
        }
    }

    /// `GET /sys/block/zram<id>`: every readable attribute, parsed, as one JSON object.
    private func deviceJSON(_ request: borrowing Request, _ device: ZramDevice) -> Dispatch {
        guard request.method == .GET || request.isHead else {
            return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD]), route: "device")
        }
        let json = DeviceJSON.render(device)
        return .inline(Response(status: 200, headers: [("Content-Type", "application/json")], body: ResponseBody(text: json)), route: "device")
    }
}
