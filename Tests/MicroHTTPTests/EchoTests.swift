import Glibc
import MicroHTTP
import Testing

@Suite("Echo: methods, headers, query, bodies")
struct EchoTests {
    @Test func getThroughCurl() throws {
        let server = try startServer()
        let result = curl(["-D", "-", "http://127.0.0.1:\(server.port)/echo?a=1&b=two%20words&c=x+y"])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("HTTP/1.1 200"))
        #expect(result.output.contains("X-Echo-Method: GET"))
        #expect(result.output.contains("X-Echo-Query: a=1;b=two words;c=x y"))
        #expect(result.output.contains("Content-Length: 33"))
        #expect(result.output.hasSuffix("\r\n\r\nGET /echo?a=1&b=two%20words&c=x+y"))
    }

    @Test func putEchoesTheBodyWithItsLength() throws {
        let server = try startServer()
        let body = String(repeating: "0123456789abcdef", count: 640)  // 10 KiB, several upload chunks
        let result = curl(["-X", "PUT", "--data-binary", body, "-w", "|%{http_code}|%{size_download}", "http://127.0.0.1:\(server.port)/echo"])
        #expect(result.output == body + "|200|10240")
    }

    @Test func offloadedPutSeesTheBody() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send("PUT /offload-echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        let response = try #require(client.readResponse())
        #expect(response.status == 200)
        #expect(response.text == "hello")
    }

    @Test func headHasGetsContentLengthAndNoBody() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send("GET /page HTTP/1.1\r\nHost: t\r\n\r\n")
        let get = try #require(client.readResponse())
        // A HEAD then a GET on the same connection: if HEAD sent a body, the GET would misparse.
        client.send("HEAD /page HTTP/1.1\r\nHost: t\r\n\r\nGET /echo HTTP/1.1\r\nHost: t\r\n\r\n")
        let head = try #require(client.readResponse(head: true))
        let next = try #require(client.readResponse())
        #expect(get.body.count == 4096)
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "4096")
        #expect(next.text == "GET /echo")
    }

    @Test func deleteAnswers204WithoutBody() throws {
        let server = try startServer()
        let result = curl(["-X", "DELETE", "-w", "%{http_code}|%{size_download}", "http://127.0.0.1:\(server.port)/echo"])
        #expect(result.output == "204|0")
    }

    @Test func headerLookupIgnoresCase() throws {
        let server = try startServer()
        let client = try RawClient(port: server.port)
        client.send("GET /echo HTTP/1.1\r\nHost: t\r\nX-Test-Header: Value 1\r\n\r\n")
        let response = try #require(client.readResponse())
        #expect(response.header("X-Echo-Header") == "Value 1")
    }

    @Test func unknownPathIs404() throws {
        let server = try startServer()
        let result = curl(["-w", "%{http_code}", "-o", "/dev/null", "http://127.0.0.1:\(server.port)/nothing"])
        #expect(result.output == "404")
    }

    @Test func ipv6Loopback() throws {
        let server = try startServer { $0.host = "::1" }
        let result = curl(["-g", "http://[::1]:\(server.port)/echo"])
        #expect(result.output == "GET /echo")
    }

    @Test func badAddressIsRefused() {
        #expect(throws: ServerError.listen(.invalidAddress("localhost"))) { try startServer { $0.host = "localhost" } }
    }
}
