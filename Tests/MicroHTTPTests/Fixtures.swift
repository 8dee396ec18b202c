import Glibc
import MicroHTTP

/// The handler every test serves.
///
/// - `/echo`: inline; answers `METHOD path?query` for GET/HEAD/DELETE (with `X-Echo-*` headers)
///   and the body back for PUT/POST.
/// - `/page`: inline; 4096 bytes of a pattern.
/// - `/slow?ms=N`: offloaded; sleeps N ms on a worker, then answers `slow`.
/// - `/offload-echo`: offloaded; the body back.
/// - `/background-nice`: on a background worker; answers that thread's nice value.
struct EchoHandler: HTTPHandler {
    func route(_ request: borrowing Request) -> Dispatch {
        switch request.path {
        case "/echo":
            if request.method == .PUT || request.method == .POST {
                return .inline(Response(status: 200, bytes: request.body), route: "echo")
            }
            if request.method == .DELETE { return .inline(Response(status: 204), route: "echo") }
            let query = request.rawQuery.isEmpty ? "" : "?" + request.rawQuery
            let headers = [
                ("X-Echo-Method", request.method.description),
                ("X-Echo-Header", request.header("x-TEST-header") ?? "-"),
                ("X-Echo-Query", request.queryItems.map { "\($0.name)=\($0.value)" }.joined(separator: ";")),
            ]
            return .inline(Response(status: 200, headers: headers, text: "\(request.method) \(request.path)\(query)"), route: "echo")
        case "/page":
            let body = ResponseBody(capacity: 4096) { buffer in
                for i in 0..<4096 { buffer[i] = UInt8(truncatingIfNeeded: i) }
                return 4096
            }
            return .inline(Response(status: 200, body: body), route: "page")
        case "/slow":
            let milliseconds = UInt32(request.query("ms") ?? "200") ?? 200
            return .offload(route: "slow") { _ in
                usleep(milliseconds * 1000)
                return Response(status: 200, text: "slow")
            }
        case "/background-nice":
            return .background(route: "background") { _ in
                Response(status: 200, text: String(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(threadID()))))
            }
        case "/offload-echo":
            return .offload(route: "offload-echo") { request in Response(status: 200, bytes: request.body) }
        default:
            return .inline(Response(status: 404, text: "not found"), route: "404")
        }
    }
}

/// A server on a free loopback port with test-sized defaults.
func startServer(_ configure: (inout ServerConfig) -> Void = { _ in }, onRequestCompleted: (@Sendable (RequestOutcome) -> Void)? = nil) throws -> HTTPServer {
    var config = ServerConfig(threadPoolSize: 2, workerCount: 2, idleTimeoutSeconds: 10, maxBodyBytes: 1 << 20)
    configure(&config)
    return try HTTPServer(config: config, handler: EchoHandler(), onRequestCompleted: onRequestCompleted)
}

/// Monotonic milliseconds.
func nowMilliseconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1e3 + Double(ts.tv_nsec) / 1e6
}

/// This process's resident set in bytes (the server runs in-process).
func residentBytes() -> Int {
    let fd = open("/proc/self/statm", O_RDONLY)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var line = [UInt8](repeating: 0, count: 128)
    let n = read(fd, &line, line.count)
    let fields = String(decoding: line[..<max(0, n)], as: UTF8.self).split(separator: " ")
    return (Int(fields[1]) ?? 0) * sysconf(Int32(_SC_PAGESIZE))
}

/// Runs `body(i)` on `count` pthreads at once and joins them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: @unchecked Sendable {
        let body: @Sendable (Int) -> Void
        let index: Int
        init(_ body: @escaping @Sendable (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
    }
    var threads: [pthread_t] = []
    for i in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(body, i)).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.body(job.index)
                return nil
            }, job)
        precondition(rc == 0)
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// Runs curl with `arguments`; its stdout and exit status.
func curl(_ arguments: [String]) -> (status: Int32, output: String) {
    var pipeFDs: [Int32] = [0, 0]
    pipe(&pipeFDs)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
    posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
    let argv = (["curl", "-s"] + arguments).map { strdup($0) } + [nil]
    defer { for arg in argv { free(arg) } }
    var pid = pid_t()
    let rc = posix_spawnp(&pid, "curl", &actions, nil, argv, environ)
    posix_spawn_file_actions_destroy(&actions)
    close(pipeFDs[1])
    guard rc == 0 else { close(pipeFDs[0]); return (-1, "") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(pipeFDs[0], &buffer, buffer.count)
        if n <= 0 { break }
        output.append(contentsOf: buffer[..<n])
    }
    close(pipeFDs[0])
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    return ((status >> 8) & 0xff, String(decoding: output, as: UTF8.self))
}

/// glibc's `gettid`, which the Glibc module does not import.
@_silgen_name("gettid")
func threadID() -> Int32
