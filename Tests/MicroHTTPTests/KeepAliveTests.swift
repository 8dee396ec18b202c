import MicroHTTP
import Testing

@Suite("Keep-alive and pipelining")
struct KeepAliveTests {
    @Test func severalRequestsOnOneConnection() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        for i in 0..<20 {
            switch i % 4 {
            case 0: client.send("GET /echo?i=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
            case 1: client.send("PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n\(100 + i)")
            case 2: client.send("GET /slow?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n")
            default: client.send("PUT /offload-echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n\(100 + i)")
            }
            let response = try #require(client.readResponse(), "request \(i)")
            #expect(response.status == 200)
            #expect(response.header("Connection")?.lowercased() != "close")
            let expected = [0: "GET /echo?i=\(i)", 1: "\(100 + i)", 2: "slow", 3: "\(100 + i)"][i % 4]
            #expect(response.text == expected)
        }
        #expect(server.activeConnections == 1)
    }

    @Test func pipelinedRequestsAnswerInOrder() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send(
            "GET /slow?ms=20 HTTP/1.1\r\nHost: t\r\n\r\n"
                + "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nabcd"
                + "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(client.readResponse()?.text == "slow")
        #expect(client.readResponse()?.text == "abcd")
        #expect(client.readResponse()?.text == "GET /echo")
    }

    @Test func curlReusesTheConnection() throws {
        let server = try startServer()
        let url = "http://127.0.0.1:\(server.port)/page"
        let result = curl([url, url, url, "-o", "/dev/null", "-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects}%{size_download} "])
        #expect(result.output == "14096 04096 04096 ")
    }
}
