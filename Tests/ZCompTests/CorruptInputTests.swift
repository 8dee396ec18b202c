import Testing
import ZComp
import ZramTestSupport

/// A backend configuration whose decoder is fed damaged input.
struct DamageCase: Sendable, CustomTestStringConvertible {
    let name: String
    var params = CodecParams()
    var label = ""
    var testDescription: String { name + label }
}

/// Decoding damaged input must throw `.corrupt` (or, rarely, decode to exactly one page),
/// never crash, never throw anything else, and never write past the page.
@Suite struct CorruptInputTests {
    static let cases: [DamageCase] =
        Codecs.names.map { DamageCase(name: $0) } + [
            DamageCase(name: "zstd", params: CodecParams(level: 19), label: " level 19"),
            DamageCase(name: "zstd", params: CodecParams(dictionary: Array(corpus.bytes[0..<32768])), label: " raw dictionary"),
            DamageCase(name: "deflate", params: CodecParams(deflateWinbits: 10), label: " winbits 10"),
            DamageCase(name: "lz4hc", params: CodecParams(level: 12), label: " level 12"),
        ]

    /// Feeds `input` to `stream`; counts outcomes and checks the canaries.
    final class Prober {
        let stream: any CodecStream
        let out = GuardedBuffer(usable: pageSize)
        var corrupt = 0, decoded = 0, other: [CodecError] = []
        var overruns = 0

        init(_ stream: any CodecStream) { self.stream = stream }

        func probe(_ input: UnsafeRawBufferPointer) {
            out.arm(from: pageSize)
            do {
                try stream.decompress(input, into: out.whole)
                decoded += 1
            } catch .corrupt {
                corrupt += 1
            } catch {
                other.append(error)
            }
            if !out.intact(from: pageSize) { overruns += 1 }
        }

        func probe(_ input: [UInt8]) { input.withUnsafeBytes { probe($0) } }
    }

    /// Compressed pages of very different ratios: a zero-ish page, and corpus pages near
    /// 1/8, 1/2 and 7/8 of a page when compressed.
    func samples(_ stream: any CodecStream) throws -> [[UInt8]] {
        var result: [[UInt8]] = [try #require(try compressed(stream, bytes: [UInt8](repeating: 0, count: pageSize)))]
        var wanted = [pageSize / 8, pageSize / 2, pageSize * 7 / 8]
        for index in Swift.stride(from: 0, to: corpus.pageCount, by: 37) where !wanted.isEmpty {
            guard let blob = try compressed(stream, page: index) else { continue }
            if let w = wanted.firstIndex(where: { abs(blob.count - $0) < pageSize / 16 }) {
                wanted.remove(at: w)
                result.append(blob)
            }
        }
        return result
    }

    @Test("truncation at every length, byte flips, garbage, empty input", arguments: cases)
    func damaged(_ c: DamageCase) throws {
        let codec = try Codecs.make(c.name, params: c.params)
        let prober = Prober(try codec.makeStream())
        var rng = SplitMix64(seed: 0xC0DEC)
        var cases = 0

        prober.probe(UnsafeRawBufferPointer(start: nil, count: 0))
        cases += 1

        let blobs = try samples(prober.stream)
        #expect(blobs.count >= 3)

        // Every proper prefix: a cut-off page never decodes to a whole one.
        for blob in blobs {
            for length in 0..<blob.count { prober.probe(Array(blob[..<length])) }
            cases += blob.count
        }
        #expect(prober.decoded == 0, "\(prober.decoded) truncated inputs decoded to a page")

        // Bytes behind the end, and one to four flipped bytes. Without a checksum a flip in a
        // literal decodes to a (wrong) page, so here only "corrupt or a page" is asserted.
        for blob in blobs {
            prober.probe(blob + [0])
            prober.probe(blob + blob)
            cases += 2
            for _ in 0..<1500 {
                var damaged = blob
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    damaged[Int.random(in: 0..<damaged.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
                prober.probe(damaged)
            }
            cases += 1500
        }
        let decodedFlips = prober.decoded

        // Random garbage of every length up to past a page, half of it behind a valid start.
        for _ in 0..<1500 {
            let count = Int.random(in: 1...(pageSize + 64), using: &rng)
            var garbage = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng), let head = blobs.randomElement(using: &rng) {
                let keep = min(garbage.count, Int.random(in: 1...head.count, using: &rng))
                garbage.replaceSubrange(0..<keep, with: head[..<keep])
            }
            prober.probe(garbage)
        }
        cases += 1500
        let decodedGarbage = prober.decoded - decodedFlips
        #expect(decodedGarbage * 100 < 1500, "\(decodedGarbage) of 1500 garbage inputs decoded to a page")

        #expect(prober.other.isEmpty, "errors other than corrupt: \(prober.other.prefix(3))")
        #expect(prober.overruns == 0)
        #expect(prober.corrupt + prober.decoded == cases)
        print("\(c.testDescription): \(cases) damaged inputs; decoded to a page: \(decodedFlips) flipped, \(decodedGarbage) garbage")
    }

    @Test("a blob from another page size is corrupt", arguments: Codecs.names)
    func pageSizeMismatch(_ name: String) throws {
        let small = try Codecs.make(name, pageSize: 2048).makeStream()
        let large = try Codecs.make(name, pageSize: 4096).makeStream()
        let page = corpus.page(100)
        let dst = GuardedBuffer(usable: 4096)

        // A 2 KiB page decoded as a 4 KiB one comes out short.
        let n2 = try #require(try page[..<2048].withUnsafeBytes { try small.compress($0, into: dst.whole) })
        let blob2 = Array(dst.bytes(n2))
        let shortProbe = Prober(large)
        shortProbe.probe(blob2)
        #expect(shortProbe.corrupt == 1 && shortProbe.overruns == 0)

        // A 4 KiB page decoded as a 2 KiB one would overflow: refused, nothing past 2 KiB written.
        let n4 = try #require(try page.withUnsafeBytes { try large.compress($0, into: dst.whole) })
        let blob4 = Array(dst.bytes(n4))
        let out = GuardedBuffer(usable: 2048)
        do {
            try blob4.withUnsafeBytes { try small.decompress($0, into: out.whole) }
            Issue.record("a 4 KiB page decoded into 2 KiB")
        } catch {
            #expect((error as? CodecError)?.kind == "corrupt")
        }
        #expect(out.intact(from: 2048))
    }

    @Test("a stream still works after rejecting damaged input", arguments: Codecs.names)
    func recoversAfterCorruption(_ name: String) throws {
        let stream = try Codecs.make(name).makeStream()
        let blob = try #require(try compressed(stream, page: 200))
        var damaged = blob
        damaged.removeLast(damaged.count / 2)
        let out = GuardedBuffer(usable: pageSize)
        #expect(throws: CodecError.self) { try damaged.withUnsafeBytes { try stream.decompress($0, into: out.whole) } }
        #expect(out.intact(from: pageSize))
        try blob.withUnsafeBytes { try stream.decompress($0, into: out.whole) }
        #expect(out.usableBytes.elementsEqual(corpus.page(200)))
    }
}
