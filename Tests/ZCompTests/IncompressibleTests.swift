import CLZ4
import CZstd
import Testing
import ZComp
import ZramTestSupport

@Suite struct IncompressibleTests {
    @Test("random pages do not fit in less than a page", arguments: Codecs.names)
    func randomPages(_ name: String) throws {
        let stream = try Codecs.make(name).makeStream()
        var rng = SplitMix64(seed: 7)
        for _ in 0..<50 {
            #expect(try compressed(stream, bytes: randomPage(&rng)) == nil)
        }
    }

    @Test("a zero page compresses to a few bytes", arguments: Codecs.names)
    func zeroPage(_ name: String) throws {
        let stream = try Codecs.make(name).makeStream()
        let zeros = [UInt8](repeating: 0, count: pageSize)
        let blob = try #require(try compressed(stream, bytes: zeros))
        #expect(blob.count < 64)
        let out = GuardedBuffer(usable: pageSize)
        try blob.withUnsafeBytes { try stream.decompress($0, into: out.whole) }
        #expect(out.usableBytes.elementsEqual(zeros))
    }

    /// nil must mean "would not be smaller", not "gave up early": compress the same pages
    /// with an unbounded buffer and check they really come out at a page or more.
    @Test("lz4 and zstd say nil exactly when the unbounded output is a page or more")
    func nilMeansTooBig() throws {
        let lz4 = try Codecs.make("lz4").makeStream()
        let zstd = try Codecs.make("zstd", params: CodecParams(level: 3)).makeStream()
        var rng = SplitMix64(seed: 11)
        // Corpus pages plus pages of noise with a compressible head, around the fit boundary.
        var pages: [[UInt8]] = Swift.stride(from: 0, to: corpus.pageCount, by: 3).map { corpus.page($0) }
        for keep in Swift.stride(from: 0, to: 400, by: 8) {
            var page = randomPage(&rng)
            for i in 0..<keep { page[i] = 0 }
            pages.append(page)
        }
        let lz4Bound = Int(LZ4_compressBound(Int32(pageSize)))
        let zstdBound = ZSTD_compressBound(pageSize)
        var big = [UInt8](repeating: 0, count: max(lz4Bound, zstdBound))
        var huge = (lz4: 0, zstd: 0)
        for page in pages {
            let lz4Full = page.withUnsafeBytes { p in
                big.withUnsafeMutableBytes { b in
                    Int(
                        LZ4_compress_default(
                            p.baseAddress!.assumingMemoryBound(to: CChar.self), b.baseAddress!.assumingMemoryBound(to: CChar.self),
                            Int32(pageSize), Int32(lz4Bound)))
                }
            }
            let lz4Fit = try compressed(lz4, bytes: page)
            #expect((lz4Fit == nil) == (lz4Full >= pageSize))
            if let lz4Fit { #expect(lz4Fit.count == lz4Full) } else { huge.lz4 += 1 }

            let zstdFull = page.withUnsafeBytes { p in
                big.withUnsafeMutableBytes { b in ZSTD_compress(b.baseAddress, b.count, p.baseAddress, pageSize, 3) }
            }
            let zstdFit = try compressed(zstd, bytes: page)
            #expect((zstdFit == nil) == (zstdFull >= pageSize))
            if let zstdFit { #expect(zstdFit.count == zstdFull) } else { huge.zstd += 1 }
        }
        #expect(huge.lz4 > 0 && huge.zstd > 0)
    }
}
