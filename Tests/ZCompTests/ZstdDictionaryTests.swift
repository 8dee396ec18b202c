import Testing
import ZComp
import ZramTestSupport

/// zstd with a dictionary: trained with ZDICT, or raw content (a slice of pages).
@Suite struct ZstdDictionaryTests {
    /// Training pages: every 7th corpus page, 2000 of them. Measured on the others.
    static let trainingStride = 7

    static let trained: [UInt8] = {
        // ZDICT builds from the first 3/4 of the samples and scores on the rest: shuffle
        // them, or it learns only the start of the corpus.
        var rng = SplitMix64(seed: 42)
        let pages = Array(Swift.stride(from: 0, to: corpus.pageCount, by: trainingStride).prefix(2000))
            .shuffled(using: &rng).flatMap { corpus.page($0) }
        // A failure surfaces in the tests as an empty dictionary, which zstd refuses.
        return (try? pages.withUnsafeBytes { try ZstdCodec.trainDictionary(samples: $0, capacity: 64 << 10) }) ?? []
    }()

    /// Pages the dictionary was not trained on (a sample, to keep the run short).
    static let evaluation = Swift.stride(from: 1, to: corpus.pageCount, by: 5).filter { $0 % trainingStride != 0 }

    /// Total compressed bytes of the evaluation pages (huge pages count as a page), checking each round trip.
    func totalSize(_ codec: any Codec) throws -> Int {
        let stream = try codec.makeStream()
        let dst = GuardedBuffer(usable: pageSize)
        let out = GuardedBuffer(usable: pageSize)
        var total = 0, mismatches = 0
        for index in Self.evaluation {
            try corpus.withPage(index) { page in
                guard let n = try stream.compress(page, into: dst.whole) else {
                    total += pageSize
                    return
                }
                total += n
                try stream.decompress(dst.bytes(n), into: out.whole)
                if !out.usableBytes.elementsEqual(page) { mismatches += 1 }
                #expect(out.intact(from: pageSize))
            }
        }
        #expect(mismatches == 0)
        return total
    }

    @Test func trainedDictionaryRoundTripsAndCompressesBetter() throws {
        #expect(Self.trained.count > 1024)
        let plain = try totalSize(Codecs.make("zstd", params: CodecParams(level: 3)))
        let codec = try ZstdCodec(params: CodecParams(level: 3, dictionary: Self.trained))
        #expect(codec.dictionaryID != 0)
        let withDict = try totalSize(codec)
        print("zstd 3 on \(Self.evaluation.count) pages: \(plain) bytes plain, \(withDict) with a \(Self.trained.count)-byte trained dictionary")
        #expect(withDict * 100 < plain * 99, "a trained dictionary should save at least 1%")
    }

    @Test func rawContentDictionaryRoundTrips() throws {
        let raw = Array(corpus.bytes[0..<(64 << 10)])
        let codec = try ZstdCodec(params: CodecParams(level: 3, dictionary: raw))
        #expect(codec.dictionaryID == 0)
        let plain = try totalSize(Codecs.make("zstd", params: CodecParams(level: 3)))
        let withDict = try totalSize(codec)
        print("zstd 3 on \(Self.evaluation.count) pages: \(plain) bytes plain, \(withDict) with a 64 KiB raw-content dictionary")
    }

    @Test func dictionaryFramesNeedTheDictionary() throws {
        let dictStream = try Codecs.make("zstd", params: CodecParams(dictionary: Self.trained)).makeStream()
        let plainStream = try Codecs.make("zstd").makeStream()
        let blob = try #require(try compressed(dictStream, page: 1))
        let out = GuardedBuffer(usable: pageSize)
        #expect(throws: CodecError.self) { try blob.withUnsafeBytes { try plainStream.decompress($0, into: out.whole) } }
        #expect(out.intact(from: pageSize))
    }

    @Test func dictionaryStreamsReadFramesMadeWithoutOne() throws {
        let dictStream = try Codecs.make("zstd", params: CodecParams(dictionary: Self.trained)).makeStream()
        let plainStream = try Codecs.make("zstd").makeStream()
        let blob = try #require(try compressed(plainStream, page: 1))
        let out = GuardedBuffer(usable: pageSize)
        try blob.withUnsafeBytes { try dictStream.decompress($0, into: out.whole) }
        #expect(out.usableBytes.elementsEqual(corpus.page(1)))
    }

    @Test func streamsOfOneCodecShareItsDictionary() throws {
        let codec = try ZstdCodec(params: CodecParams(level: 3, dictionary: Self.trained))
        let a = try codec.makeStream(), b = try codec.makeStream()
        for index in [1, 2, 3, 500, 9001] {
            guard let blob = try compressed(a, page: index) else { continue }
            let out = GuardedBuffer(usable: pageSize)
            try blob.withUnsafeBytes { try b.decompress($0, into: out.whole) }
            #expect(out.usableBytes.elementsEqual(corpus.page(index)))
        }
    }
}
