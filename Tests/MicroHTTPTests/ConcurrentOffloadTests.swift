import Glibc
import MicroHTTP
import Testing
import ZSync
import ZramTestSupport

@Suite("Concurrent offload: slow jobs, metrics, graceful stop")
struct ConcurrentOffloadTests {
    @Test func slowJobDoesNotDelayFastRequests() throws {
        let server = try startServer()
        let port = server.port
        let slow = try RawClient(port: port)
        slow.send("GET /slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n")
        // Polled, not slept: under ThreadSanitizer the hand-off can take longer than a fixed pause.
        #expect(eventually { server.suspendedRequests == 1 }, "the slow job never reached a worker")
        let worst = Locked(0.0)
        let statuses = Locked([Int]())
        onThreads(32) { _ in
            let start = nowMilliseconds()
            let status =
                (try? RawClient(port: port))
                .flatMap { client in client.send("GET /page HTTP/1.1\r\nHost: t\r\n\r\n") ? client.readResponse() : nil }?.status ?? 0
            let elapsed = nowMilliseconds() - start
            worst.withLock { $0 = max($0, elapsed) }
            statuses.withLock { $0.append(status) }
        }
        #expect(statuses.withLock { $0 } == Array(repeating: 200, count: 32))
        #expect(worst.withLock { $0 } < 100, "slowest fast request took \(worst.withLock { $0 }) ms")
        #expect(slow.readResponse()?.text == "slow")
        // The count drops once the resumed connection is finished with, just after the reply is sent.
        #expect(eventually { server.suspendedRequests == 0 })
    }

    /// Waits up to 2 s for `condition`.
    func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test func backgroundJobsRunOnLowerPriorityWorkers() throws {
        let server = try startServer { $0.backgroundNice = 10 }
        let client = try RawClient(port: server.port)
        client.send("GET /background-nice HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.text == "10")
        client.send("GET /slow?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.text == "slow", "ordinary offloaded jobs still run")
    }

    @Test func completionHookReportsRouteStatusAndDuration() throws {
        let outcomes = Locked([RequestOutcome]())
        let server = try startServer(onRequestCompleted: { outcome in outcomes.withLock { $0.append(outcome) } })
        let client = try RawClient(port: server.port)
        client.send("GET /slow?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = client.readResponse()
        client.send("GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = client.readResponse()
        client.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n")
        _ = client.readResponse()
        server.stop()
        let seen = outcomes.withLock { $0 }
        #expect(seen.map(\.route) == ["slow", "404", ""])
        #expect(seen.map(\.status) == [200, 404, 413])
        #expect(seen[0].durationNanos >= 30_000_000)
        #expect(seen[0].completed && seen[1].completed)
    }

    @Test func stopWaitsForOffloadedRequests() throws {
        let server = try startServer()
        let port = server.port
        let answers = Locked([String]())
        whileThreadsRun(4) { _ in
            guard let client = try? RawClient(port: port) else { return }
            client.send("GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = client.readResponse()
            answers.withLock { $0.append("\(response?.status ?? 0) \(response?.header("Connection") ?? "")") }
        } whileRunning: {
            while server.suspendedRequests < 4 { usleep(1000) }
            let start = nowMilliseconds()
            server.stop()
            let elapsed = nowMilliseconds() - start
            #expect(elapsed > 150 && elapsed < 2000, "stop took \(elapsed) ms")
            #expect(server.suspendedRequests == 0)
            #expect((try? RawClient(port: port)) == nil, "still accepting after stop")
        }
        #expect(answers.withLock { $0 } == Array(repeating: "200 close", count: 4))
    }

    @Test func fullWorkerQueueAnswers503() throws {
        let server = try startServer {
            $0.workerCount = 1; $0.maxQueuedJobs = 1
        }
        let port = server.port
        let statuses = Locked([Int]())
        onThreads(4) { i in
            usleep(UInt32(i) * 20_000)  // one runs, one waits in the queue, two find it full
            guard let client = try? RawClient(port: port) else { return }
            client.send("GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n")
            let response = client.readResponse()
            if response?.status == 503 { #expect(response?.header("Retry-After") == "1") }
            statuses.withLock { $0.append(response?.status ?? 0) }
        }
        #expect(statuses.withLock { $0.sorted() } == [200, 200, 503, 503])
    }
}

/// Runs `body(i)` on `count` threads while `main` runs here, then waits for them.
func whileThreadsRun(_ count: Int, _ body: @escaping @Sendable (Int) -> Void, whileRunning main: () -> Void) {
    let done = Locked(0)
    for i in 0..<count {
        PThread.detach {
            body(i); done.withLock { $0 += 1 }
        }
    }
    main()
    while done.withLock({ $0 }) < count { usleep(1000) }
}
