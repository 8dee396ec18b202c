import Testing
@testable import ZramHTTP

/// A byte collection that counts how many of its bytes were read.
final class CountingBytes: RandomAccessCollection, @unchecked Sendable {
    let bytes: [UInt8]
    var reads = 0
    init(_ text: String) { bytes = Array(text.utf8) }
    var startIndex: Int { 0 }
    var endIndex: Int { bytes.count }
    subscript(position: Int) -> UInt8 {
        reads += 1
        return bytes[position]
    }
}

@Suite struct AuthTests {
    @Test("the token comparison is right")
    func comparisonIsRight() {
        #expect(Tokens.constantTimeEqual("s3cret-token", "s3cret-token"))
        #expect(Tokens.constantTimeEqual("", ""))
        for other in ["s3cret-tokeN", "S3cret-token", "s3cret-toke", "s3cret-token\0", "", "s3cret-token-longer"] {
            #expect(!Tokens.constantTimeEqual("s3cret-token", other), "\(other)")
            #expect(!Tokens.constantTimeEqual(other, "s3cret-token"), "\(other)")
        }
    }

    @Test("the comparison reads every byte of both tokens, wherever they differ: no early exit")
    func noEarlyExit() {
        let token = "0123456789abcdef0123456789abcdef"
        for presented in [
            "X123456789abcdef0123456789abcdef",  // differs at the first byte
            "0123456789abcdef0123456789abcdeX",  // at the last
            "0123456789abcdef0123456789abcdef",  // not at all
            "X",  // much shorter
            token + token,
        ] {  // longer
            let a = CountingBytes(presented), b = CountingBytes(token)
            _ = Tokens.constantTimeEqual(a, b)
            #expect(a.reads == a.bytes.count, "every presented byte read (\(presented))")
            #expect(b.reads == b.bytes.count, "every token byte read (\(presented))")
        }
    }
}
