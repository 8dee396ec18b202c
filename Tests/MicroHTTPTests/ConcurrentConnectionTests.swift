import Glibc
import MicroHTTP
import Testing
import ZSync

@Suite("Concurrent connections: slowloris, limits, malformed requests")
struct ConcurrentConnectionTests {
    @Test func stalledHeadersAreClosedAfterTheTimeoutWithoutBlockingOthers() throws {
        let server = try startServer { $0.idleTimeoutSeconds = 1 }
        let stalled = try (0..<8).map { _ in try RawClient(port: server.port) }
        for client in stalled { client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Slow: ") }
        // Normal clients are served while the stalled ones hang on.
        for _ in 0..<5 { #expect(curl(["-m", "2", "http://127.0.0.1:\(server.port)/echo"]).output == "GET /echo") }
        let start = nowMilliseconds()
        for client in stalled { #expect(client.waitForClose()) }
        let elapsed = nowMilliseconds() - start
        #expect(elapsed < 3000, "stalled connections closed after \(elapsed) ms")
        usleep(50_000)
        #expect(server.activeConnections == 0)
    }

    @Test func idleKeepAliveConnectionIsClosed() throws {
        let server = try startServer { $0.idleTimeoutSeconds = 1 }
        let client = try RawClient(port: server.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.status == 200)
        let start = nowMilliseconds()
        #expect(client.waitForClose())
        #expect(nowMilliseconds() - start > 500)
    }

    @Test func connectionLimitIsRespected() throws {
        let server = try startServer {
            $0.threadPoolSize = 1; $0.connectionLimit = 4
        }
        let clients = try (0..<6).map { _ in try RawClient(port: server.port, timeout: 2) }
        usleep(100_000)
        #expect(server.activeConnections == 4)
        var served = 0
        for client in clients {
            client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
            if client.readResponse()?.status == 200 { served += 1 }
        }
        #expect(served == 4)
        withExtendedLifetime(clients) {}
    }

    @Test func freedSlotsServeNewClients() throws {
        let server = try startServer {
            $0.threadPoolSize = 1; $0.connectionLimit = 2
        }
        do {
            let held = try (0..<2).map { _ in try RawClient(port: server.port) }
            usleep(50_000)
            #expect(server.activeConnections == 2)
            withExtendedLifetime(held) {}
        }
        usleep(100_000)
        #expect(curl(["-m", "2", "http://127.0.0.1:\(server.port)/echo"]).output == "GET /echo")
    }

    @Test(arguments: [
        "GET /echo\r\n\r\n", "GET  HTTP/1.1\r\nHost: t\r\n\r\n", "GET /echo HTTP/1.1\r\nNo colon here\r\n\r\n",
        "GET /echo HTTP/1.1\r\n\r\n",
    ])
    func malformedRequestsGet400AndTheServerKeepsServing(_ request: String) throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send(request)
        #expect(client.readResponse()?.status == 400)
        #expect(client.waitForClose())
        #expect(curl(["http://127.0.0.1:\(server.port)/echo"]).output == "GET /echo")
    }

    /// A request line that cannot be split into tokens is answered 400 (libmicrohttpd 0.9.75
    /// dropped it without a reply).
    @Test(arguments: ["GARBAGE\r\n\r\n", "GET\r\n\r\n"])
    func untokenizableRequestLinesGet400(_ request: String) throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send(request)
        #expect(client.readResponse()?.status == 400)
        #expect(client.waitForClose())
        #expect(curl(["http://127.0.0.1:\(server.port)/echo"]).output == "GET /echo")
    }

    @Test func manyClientsAtOnce() throws {
        let server = try startServer()
        let port = server.port
        let ok = Locked(0)
        onThreads(16) { i in
            guard let client = try? RawClient(port: port) else { return }
            for j in 0..<25 {
                let path = j % 5 == 0 ? "/slow?ms=1" : "/echo?c=\(i)"
                client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
                if client.readResponse()?.status == 200 { ok.withLock { $0 += 1 } }
            }
        }
        #expect(ok.withLock { $0 } == 400)
    }
}
