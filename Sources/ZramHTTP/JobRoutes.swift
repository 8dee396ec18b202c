import Foundation
import MicroHTTP
import ZramDevice

/// `PUT /sys/block/zram<id>/<attr>?async=1`, `GET /jobs`, `GET|DELETE /jobs/<id>` (docs/API.md, "Jobs").
extension ZramRouter {
    static let json: [(name: String, value: String)] = [("Content-Type", "application/json")]

    /// True when a write asks to run as a job (`?async=…` is present).
    static func wantsJob(_ request: borrowing Request, _ attribute: String) -> Bool {
        request.queryItems.contains { $0.name == "async" }
    }

    /// Starts `attribute` with the request's body as a job: 202 and `Location: /jobs/<id>`.
    /// `async=1` is the only value; bad input (body, value, device state) is refused at once.
    func startJob(_ request: borrowing Request, _ device: ZramDevice, _ attribute: String) -> Dispatch {
        let jobs = self.jobs
        let value = request.query("async") ?? ""
        guard value == "1" else {
            return .inline(ErrorResponse.make(ZramError(.EINVAL, "async must be 1, not \"\(value)\"")), route: "job_start")
        }
        guard ZramDevice.attributeInfo[attribute]?.cost == .maintenance else {
            let jobs = ZramDevice.attributeInfo.values.filter { $0.cost == .maintenance }.map(\.name).sorted()
            return .inline(
                ErrorResponse.make(ZramError(.EINVAL, "\(attribute) does not run as a job (async=1 is for \(jobs.joined(separator: ", ")))")),
                route: "job_start")
        }
        return .offload(route: "job_start") { request in
            guard let text = String(validating: request.body, as: UTF8.self) else {
                return ErrorResponse.make(ZramError(.EINVAL, "the body is not UTF-8 text"))
            }
            do throws(ZramError) {
                let prepared = try device.prepareJob(attribute, text)
                let job = try jobs.start(prepared, on: device)
                return Response(
                    status: 202, headers: Self.json + [("Location", "/jobs/\(job.id)")],
                    body: ResponseBody(text: Self.render(job.json())))
            } catch {
                return ErrorResponse.make(error)
            }
        }
    }

    /// `/jobs` and `/jobs/<id>`.
    func routeJobs(_ request: borrowing Request, _ parts: [String]) -> Dispatch {
        switch parts.count {
        case 0:
            guard request.method == .GET || request.isHead else {
                return .inline(
                    ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD], hint: "; start a job with PUT /sys/block/zram<id>/<attr>?async=1"),
                    route: "jobs")
            }
            let list = jobs.all.reversed().map { $0.json() }
            return .inline(Response(status: 200, headers: Self.json, body: ResponseBody(text: Self.render(list))), route: "jobs")
        case 1:
            guard let id = Int(parts[0]), id > 0, String(id) == parts[0] else {
                return .inline(ErrorResponse.make(ZramError(.ENOENT, "no job \(parts[0]): job ids are positive decimal numbers")), route: "job")
            }
            guard let job = jobs.job(id) else {
                return .inline(ErrorResponse.make(ZramError(.ENOENT, "no job \(id) (unknown, or dropped from the history)")), route: "job")
            }
            switch request.method {
            case .GET, .HEAD:
                return .inline(Response(status: 200, headers: Self.json, body: ResponseBody(text: Self.render(job.json()))), route: "job")
            case .DELETE:
                if let denied = tokens.check(request, against: tokens.admin) { return .inline(denied, route: "unauthorized") }
                guard job.isActive else {
                    return .inline(ErrorResponse.make(ZramError(.EINVAL, "job \(id) has already ended (\(job.state.rawValue))")), route: "job_cancel")
                }
                job.progress.cancel()
                // Accepted: the run stops at its next batch boundary; poll the job for the end.
                return .inline(
                    Response(
                        status: 202, headers: Self.json + [("Location", "/jobs/\(id)")],
                        body: ResponseBody(text: Self.render(job.json()))), route: "job_cancel")
            default:
                return .inline(ErrorResponse.wrongMethod(request.method, allow: [.GET, .HEAD, .DELETE]), route: "job")
            }
        default:
            return .inline(ErrorResponse.notFound(request.path), route: "unknown")
        }
    }

    static func render(_ value: Any) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
