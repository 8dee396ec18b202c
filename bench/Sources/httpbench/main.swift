import Glibc
import MicroHTTP
import ZSync

// httpbench serve PORT [THREADS] [WORKERS]: serves PageHandler until stdin closes, then prints
// requests answered and server CPU µs per request by route (wrk drives the load).

let arguments = CommandLine.arguments
switch arguments.dropFirst().first {
case "serve":
    let port = arguments.count > 2 ? UInt16(arguments[2])! : 0
    let threads = arguments.count > 3 ? Int(arguments[3])! : ServerConfig.cores
    let workers = arguments.count > 4 ? Int(arguments[4])! : ServerConfig.cores
    let counter = RouteCounter()
    let server = try HTTPServer(
        config: ServerConfig(port: port, threadPoolSize: threads, workerCount: workers),
        handler: PageHandler(size: 4096), onRequestCompleted: { counter.record($0.route) })
    print("listening on 127.0.0.1:\(server.port)")
    fflush(nil)
    var cpuMark = cpuSeconds()
    var countMark = counter.total()
    // Each line on stdin ("mark LABEL") reports the CPU spent since the previous mark.
    while let line = readLine() {
        let cpu = cpuSeconds(), count = counter.total()
        let requests = count - countMark
        let perRequest = requests > 0 ? (cpu - cpuMark) / Double(requests) * 1e6 : 0
        print("\(line): \(requests) requests, \((perRequest * 100).rounded() / 100) µs CPU/request")
        fflush(nil)
        cpuMark = cpu
        countMark = count
    }
    server.stop()
default:
    print("usage: httpbench serve [PORT [THREADS [WORKERS]]] ")
    exit(2)
}

/// Requests completed, for CPU-per-request readings.
final class RouteCounter: Sendable {
    private let count = Locked(0)
    func record(_ route: String) { count.withLock { $0 += 1 } }
    func total() -> Int { count.withLock { $0 } }
}
