import Glibc
import MicroHTTP
import Testing

/// The checks a connection's first head meets (issue 11; the front door made them until the
/// polling thread took them over for every head) and the ones on complete headers: each
/// answered in one well-formed response, then the connection closed.
@Suite("Front door: heads answered or closed in bounded time")
struct FrontDoorTests {
    @Test func aTrickledHeadGets408AtTheDeadline() throws {
        let server = try startServer {
            $0.headerTimeoutSeconds = 1; $0.idleTimeoutSeconds = 30
        }
        let client = try RawClient(port: server.port, timeout: 5)
        let start = nowMilliseconds()
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Trickle: ")
        var answered = false
        while nowMilliseconds() - start < 4000, !answered {
            _ = client.send("a")
            var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            answered = poll(&poller, 1, 250) > 0
        }
        let response = try #require(client.readResponse())
        let took = nowMilliseconds() - start
        #expect(response.status == 408)
        #expect(response.text.hasPrefix("ETIMEDOUT: "))
        #expect(took > 900 && took < 2000, "408 after \(took) ms")
        #expect(client.waitForClose())
    }

    @Test func aHalfClosedPartialRequestIsClosedAtOnce() throws {
        let server = try startServer { $0.idleTimeoutSeconds = 30 }
        let client = try RawClient(port: server.port, timeout: 2)
        client.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Le")
        shutdown(client.fd, Int32(SHUT_WR))
        let start = nowMilliseconds()
        #expect(client.waitForClose())
        #expect(nowMilliseconds() - start < 500)
    }

    @Test(arguments: [
        ("GET /echo?" + Array(repeating: "a=b", count: 500).joined(separator: "&") + " HTTP/1.1\r\nHost: t\r\n\r\n", 400),
        ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        ("GET /echo HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 20000) + "\r\n\r\n", 431),
        ("GET /echo HTTP/1.1\r\n\r\n", 400),
        ("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0x10\r\n\r\n", 400),
        ("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: +4\r\n\r\nabcd", 400),
    ])
    func badHeadsGetOneResponseThenClose(request: String, status: Int) throws {
        let server = try startServer()
        let client = try RawClient(port: server.port, timeout: 3)
        client.send(request)
        let response = try #require(client.readResponse())
        #expect(response.status == status)
        #expect(response.header("Connection") == "close")
        #expect(client.waitForClose(), "more than one response, or the connection stayed open")
    }

    @Test func aRefusalOnTheHeadersComesBeforeAnyBody() throws {
        let server = try HTTPServer(
            config: ServerConfig(threadPoolSize: 1, workerCount: 1, maxBodyBytes: 1 << 20), handler: Gatekeeper())
        let client = try RawClient(port: server.port, timeout: 3)
        client.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        let start = nowMilliseconds()
        let response = try #require(client.readResponse(), "no answer until the body came")
        #expect(response.status == 401)
        #expect(nowMilliseconds() - start < 1000)
    }

    @Test func bodiesInFlightAreBoundedAcrossConnections() throws {
        let server = try startServer {
            $0.maxBodyBytes = 1 << 20; $0.maxBodyMemory = 1 << 20
        }
        let first = try RawClient(port: server.port, timeout: 3)
        first.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 800000\r\n\r\n")
        first.send(String(repeating: "x", count: 1000))
        usleep(100_000)
        let second = try RawClient(port: server.port, timeout: 3)
        second.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 800000\r\n\r\n")
        let refused = try #require(second.readResponse())
        #expect(refused.status == 503)
        #expect(refused.header("Retry-After") == "1")
        first.send(String(repeating: "x", count: 799_000))
        #expect(first.readResponse()?.body.count == 800_000)
        // Released once the first completes.
        let third = try RawClient(port: server.port, timeout: 3)
        third.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd")
        #expect(third.readResponse()?.text == "abcd")
    }
}

/// The requests after a connection's first, which the polling thread reads.
@Suite("Keep-alive requests bounded in time")
struct LaterHeadTests {
    @Test func aTrickledSecondHeadGets408AtTheHeaderTimeout() throws {
        let server = try startServer {
            $0.headerTimeoutSeconds = 1; $0.idleTimeoutSeconds = 1
        }
        let client = try RawClient(port: server.port, timeout: 5)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.status == 200)
        let start = nowMilliseconds()
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Trickle: ")
        var open = true
        while open, nowMilliseconds() - start < 6000 {
            open = client.send("a")
            var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            if poll(&poller, 1, 200) > 0 { break }
        }
        let took = nowMilliseconds() - start
        #expect(client.readResponse()?.status == 408)
        #expect(client.waitForClose())
        #expect(took > 900 && took < 2000, "408 after \(took) ms")
    }

    @Test func blankLinesBetweenRequestsAreSkippedButTimed() throws {
        let server = try startServer {
            $0.headerTimeoutSeconds = 1; $0.idleTimeoutSeconds = 30
        }
        let client = try RawClient(port: server.port, timeout: 5)
        client.send("\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n\r\n")
        #expect(client.readResponse()?.text == "GET /echo")
        let start = nowMilliseconds()
        var answered = false
        while !answered, nowMilliseconds() - start < 4000 {
            _ = client.send(String(repeating: "\r\n", count: 4096))
            var poller = pollfd(fd: client.fd, events: Int16(POLLIN), revents: 0)
            answered = poll(&poller, 1, 100) > 0
        }
        let took = nowMilliseconds() - start
        #expect(client.readResponse()?.status == 408)
        #expect(took > 900 && took < 2000, "408 after \(took) ms")
    }

    @Test func aHalfClosedSecondRequestIsClosedSoon() throws {
        let server = try startServer { $0.idleTimeoutSeconds = 30 }
        let client = try RawClient(port: server.port, timeout: 5)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.status == 200)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Part")
        shutdown(client.fd, Int32(SHUT_WR))
        let start = nowMilliseconds()
        #expect(client.waitForClose())
        #expect(nowMilliseconds() - start < 1500)
    }

    @Test func aCompleteRequestThenFinIsStillAnswered() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port, timeout: 5)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.status == 200)
        client.send("GET /slow?ms=600 HTTP/1.1\r\nHost: t\r\n\r\n")
        shutdown(client.fd, Int32(SHUT_WR))
        #expect(client.readResponse()?.text == "slow")
    }
}

/// Refuses every request on its headers.
struct Gatekeeper: HTTPHandler {
    func route(_ request: borrowing Request) -> Dispatch { .inline(Response(status: 200, text: "in"), route: "in") }
    func admit(_ request: borrowing Request) -> Response? { Response(status: 401, text: "no") }
}
