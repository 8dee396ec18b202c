import Testing
import ZComp
import ZramTestSupport

/// One backend at one level, over every `stride`-th corpus page.
struct RoundTripCase: Sendable, CustomTestStringConvertible {
    let name: String
    var level: Int? = nil
    var winbits: Int? = nil
    var stride = 1
    var testDescription: String {
        "\(name) level \(level.map(String.init) ?? "default")"
            + (winbits.map { " winbits \($0)" } ?? "") + (stride > 1 ? " every \(stride)th page" : "")
    }
}

@Suite struct RoundTripTests {
    static let cases: [RoundTripCase] = [
        .init(name: "lzo"),
        .init(name: "lz4", level: 1), .init(name: "lz4", level: 8),
        .init(name: "lz4hc", level: 4), .init(name: "lz4hc", level: 12, stride: 8),
        .init(name: "zstd", level: 1), .init(name: "zstd", level: 3), .init(name: "zstd", level: -5, stride: 4),
        .init(name: "zstd", level: 19, stride: 8),
        .init(name: "deflate", level: 1), .init(name: "deflate", level: 9),
        .init(name: "deflate", level: 6, winbits: 9, stride: 4),
    ]

    @Test("every corpus page round trips byte for byte", arguments: cases)
    func corpusRoundTrips(_ c: RoundTripCase) throws {
        let codec = try Codecs.make(c.name, params: CodecParams(level: c.level, deflateWinbits: c.winbits))
        let stream = try codec.makeStream()
        let dst = GuardedBuffer(usable: pageSize)
        let out = GuardedBuffer(usable: pageSize)
        var stored = 0, huge = 0, mismatches = 0, compressedBytes = 0
        for index in Swift.stride(from: 0, to: corpus.pageCount, by: c.stride) {
            try corpus.withPage(index) { page in
                dst.arm(from: 0)
                guard let n = try stream.compress(page, into: dst.whole) else {
                    huge += 1
                    return
                }
                #expect(n > 0 && n < pageSize)
                #expect(dst.intact(from: pageSize - 1), "page \(index): compress wrote past pageSize - 1")
                out.arm(from: 0)
                try stream.decompress(dst.bytes(n), into: out.whole)
                #expect(out.intact(from: pageSize), "page \(index): decompress wrote past the page")
                if !out.usableBytes.elementsEqual(page) { mismatches += 1 }
                stored += 1
                compressedBytes += n
            }
        }
        #expect(mismatches == 0)
        #expect(stored > 0)
        // The corpus is real memory: most pages compress; a page of noise is rare.
        #expect(huge * 10 < stored + huge, "\(huge) of \(stored + huge) pages did not fit")
        print("\(c.testDescription): \(stored) stored, \(huge) huge, \(compressedBytes) compressed bytes")
    }

    @Test("a page size other than 4096 round trips", arguments: Codecs.names)
    func otherPageSizes(_ name: String) throws {
        for size in [2048, 16384] {
            let stream = try Codecs.make(name, pageSize: size).makeStream()
            // Several corpus pages concatenated (or the first part of one) make one big (small) page.
            let page = Array(corpus.bytes[4096 * 100..<4096 * 100 + size])
            let dst = GuardedBuffer(usable: size)
            let n = try #require(try page.withUnsafeBytes { try stream.compress($0, into: dst.whole) })
            #expect(dst.intact(from: size - 1))
            let out = GuardedBuffer(usable: size)
            try stream.decompress(dst.bytes(n), into: out.whole)
            #expect(out.usableBytes.elementsEqual(page))
            #expect(out.intact(from: size))
        }
    }

    @Test("one stream alternates compress and decompress of different pages", arguments: Codecs.names)
    func interleaved(_ name: String) throws {
        let stream = try Codecs.make(name).makeStream()
        let pages = [5, 900, 7000, 12000, 31]
        let blobs = try pages.map { try compressed(stream, page: $0) }
        for (index, blob) in zip(pages, blobs).reversed() {
            guard let blob else { continue }
            let out = GuardedBuffer(usable: pageSize)
            try blob.withUnsafeBytes { try stream.decompress($0, into: out.whole) }
            #expect(out.usableBytes.elementsEqual(corpus.page(index)))
        }
    }
}
