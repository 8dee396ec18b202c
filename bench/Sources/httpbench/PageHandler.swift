import Glibc
import MicroHTTP

/// Serves one 4 KiB page from memory: `/inline` on the polling thread, `/offload` through a worker.
///
/// `@unchecked Sendable`: `page` is written in `init` and only read afterwards.
final class PageHandler: HTTPHandler, @unchecked Sendable {
    /// The page, allocated once and never freed (lives as long as the process).
    let page: UnsafeRawBufferPointer

    init(size: Int) {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        for i in 0..<size { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        page = UnsafeRawBufferPointer(bytes)
    }

    func route(_ request: borrowing Request) -> Dispatch {
        switch request.path {
        case "/inline":
            return .inline(Response(status: 200, headers: [("Content-Type", "application/octet-stream")], bytes: page), route: "inline")
        case "/offload":
            return .offload(route: "offload") { [self] _ in
                Response(status: 200, headers: [("Content-Type", "application/octet-stream")], bytes: page)
            }
        default:
            return .inline(Response(status: 404, text: "no such path\n"), route: "404")
        }
    }
}

/// User + system CPU seconds this process has used.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
