import CMicroHTTPD
import Glibc
import ZSync

/// Requests completed, for CPU-per-request readings.
final class RouteCounter: Sendable {
    private let count = Locked(0)
    func record(_ route: String) { count.withLock { $0 += 1 } }
    func total() -> Int { count.withLock { $0 } }
}

/// Times building and destroying a 4 KiB libmicrohttpd response with each memory mode.
enum RespMem {
    static func run() {
        let size = 4096, rounds = 2_000_000
        let page = malloc(size)!
        memset(page, 0x5a, size)
        func time(_ label: String, _ body: () -> Void) {
            var start = timespec(), end = timespec()
            clock_gettime(CLOCK_MONOTONIC, &start)
            for _ in 0..<rounds { body() }
            clock_gettime(CLOCK_MONOTONIC, &end)
            let ns = Double((end.tv_sec - start.tv_sec) * 1_000_000_000 + (end.tv_nsec - start.tv_nsec)) / Double(rounds)
            print("\(label): \(Int(ns)) ns per response")
        }
        // The handler's bytes start in its own malloc'ed buffer in both cases (ResponseBody).
        time("MUST_COPY (MHD copies, we free ours)") {
            let ours = malloc(size)!
            memcpy(ours, page, size)
            let response = MHD_create_response_from_buffer(size, ours, .RESPMEM_MUST_COPY)
            free(ours)
            MHD_destroy_response(response)
        }
        time("MUST_FREE (MHD takes ours)") {
            let ours = malloc(size)!
            memcpy(ours, page, size)
            let response = MHD_create_response_from_buffer(size, ours, .RESPMEM_MUST_FREE)
            MHD_destroy_response(response)
        }
        free(page)
    }
}
