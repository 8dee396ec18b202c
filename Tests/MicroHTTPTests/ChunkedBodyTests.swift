import Testing

@testable import MicroHTTP

/// The in-place chunked decoder, fed the way a socket feeds it: in pieces of every size.
@Suite("Chunked bodies decoded in place")
struct ChunkedBodyTests {
    /// Feeds `encoded` (after a 7-byte stand-in head) `step` bytes at a time; the decoded body
    /// and the encoded length, or the first non-`needMore` outcome.
    static func decode(_ encoded: String, step: Int) -> (ChunkedBody.Progress, body: String, encoded: Int?) {
        let head = Array("HEAD\r\n\r".utf8)
        let bytes = Array(encoded.utf8)
        var input = ByteBuffer(capacity: 16)
        input.append(UnsafeRawBufferPointer(start: head, count: head.count))
        var decoder = ChunkedBody()
        var offset = 0
        while true {
            let piece = bytes[offset..<min(bytes.count, offset + step)]
            piece.withUnsafeBytes { input.append($0) }
            offset += piece.count
            let progress = decoder.decode(&input, from: head.count)
            if case .needMore = progress, offset < bytes.count { continue }
            var body = ""
            if case .complete(let count) = progress {
                body = String(decoding: UnsafeRawBufferPointer(start: input.base + head.count, count: count), as: UTF8.self)
            }
            return (progress, body, decoder.encodedCount)
        }
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func decodesWhateverThePieces(step: Int) {
        let encoded = "4\r\nWiki\r\n5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\nGET /next"
        let result = Self.decode(encoded, step: step)
        #expect(result.0 == .complete(23))
        #expect(result.body == "Wikipedia in\r\n\r\nchunks.")
        // The next pipelined request starts right after the trailer's empty line.
        #expect(result.encoded == encoded.utf8.count - "GET /next".utf8.count)
    }

    @Test func bareLineFeedsAndUpperCaseHex() {
        #expect(Self.decode("A\nabcdefghij\n0\n\n", step: 1).body == "abcdefghij")
    }

    @Test func declaresWhatIsComing() {
        #expect(Self.decode("100000\r\nab", step: 100).0 == .needMore(declared: 0x100000))
    }

    @Test(arguments: ["zz\r\n", "\r\n", "4\r\nabcdXY", "1234567890abcdef0\r\n", "4 x\r\n", String(repeating: "1", count: 9000)])
    func malformedIsRefused(encoded: String) {
        #expect(Self.decode(encoded, step: 4096).0 == .malformed)
    }
}

/// What `RequestHead` records of a complete head for the polling thread.
@Suite("Request heads parsed")
struct RequestHeadParseTests {
    static let limits = RequestHead.Limits(maxRequestLine: 8192, maxHead: 16384, maxQueryItems: 64)

    static func parse(_ text: String) -> RequestHead.Parsed? {
        Array(text.utf8).withUnsafeBytes { bytes in
            if case .complete(let parsed) = RequestHead.inspect(bytes, limits) { return parsed }
            return nil
        }
    }

    @Test func framingConnectionAndExpect() throws {
        let put = try #require(
            Self.parse("PUT /a?b=c HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nExpect: 100-continue\r\nConnection: x, Close\r\n\r\n"))
        #expect(put.contentLength == 12 && !put.chunked && put.close && put.expectContinue && put.http11)
        #expect((put.methodStart, put.methodEnd, put.targetStart, put.targetEnd) == (0, 3, 4, 10))
        let chunked = try #require(Self.parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(chunked.chunked && chunked.contentLength == nil && !chunked.close)
    }

    @Test func http10ClosesUnlessKeepAlive() throws {
        #expect(try #require(Self.parse("GET / HTTP/1.0\r\n\r\n")).close)
        #expect(!(try #require(Self.parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")).close))
    }

    @Test func headerLinesAreFoundByName() {
        let lines = Array("Host: h\r\nX-Long:   spaced value \t\r\nEmpty:\r\n".utf8)
        let headers = lines.withUnsafeBytes { HeaderLines.parse($0) }
        #expect(headers.map(\.name) == ["Host", "X-Long", "Empty"])
        #expect(headers.map(\.value) == ["h", "spaced value", ""])
    }

    @Test func pathsArePercentDecodedQueriesAreNot() {
        let decode = { (text: String) in Array(text.utf8).withUnsafeBytes { PathDecoding.decode($0) } }
        #expect(decode("/dev/zram0/pages/%31%32") == "/dev/zram0/pages/12")
        #expect(decode("/a+b%2") == "/a+b%2")
    }
}
