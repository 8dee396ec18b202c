import Foundation
import Testing
import ZComp
import ZramTestSupport

/// A quick speed and ratio table over the whole corpus, one stream, one thread.
/// Off by default; run in release mode:
/// `ZCOMP_BENCH=1 swift test -c release --filter CodecThroughput`.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["ZCOMP_BENCH"] != nil))
struct CodecThroughputTests {
    static let configs: [(label: String, name: String, params: CodecParams)] = [
        ("lzo", "lzo", CodecParams()),
        ("lz4", "lz4", CodecParams()),
        ("lz4 accel 8", "lz4", CodecParams(level: 8)),
        ("lz4hc 9", "lz4hc", CodecParams()),
        ("zstd 1", "zstd", CodecParams(level: 1)),
        ("zstd 3", "zstd", CodecParams()),
        ("zstd 3 + dict", "zstd", CodecParams(dictionary: ZstdDictionaryTests.trained)),
        ("deflate 6", "deflate", CodecParams()),
    ]

    @Test func table() throws {
        let pages = corpus.pageCount
        let store = UnsafeMutableRawBufferPointer.allocate(byteCount: pages * pageSize, alignment: 16)
        defer { store.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { out.deallocate() }
        var lengths = [Int](repeating: 0, count: pages)
        var rows = ["| codec | compress MB/s | decompress MB/s | ratio | huge pages |", "|---|---:|---:|---:|---:|"]
        for config in Self.configs {
            let stream = try Codecs.make(config.name, params: config.params).makeStream()
            var best = (c: Double.infinity, d: Double.infinity)
            var stored = 0, huge = 0, storedPages = 0
            for _ in 0..<3 {
                stored = 0; huge = 0; storedPages = 0
                let c0 = ContinuousClock.now
                try corpus.bytes.withUnsafeBytes { all in
                    for i in 0..<pages {
                        let page = UnsafeRawBufferPointer(rebasing: all[i * pageSize..<(i + 1) * pageSize])
                        let dst = UnsafeMutableRawBufferPointer(rebasing: store[i * pageSize..<(i + 1) * pageSize])
                        lengths[i] = try stream.compress(page, into: dst) ?? 0
                    }
                }
                let c1 = ContinuousClock.now
                for i in 0..<pages where lengths[i] > 0 {
                    try stream.decompress(UnsafeRawBufferPointer(rebasing: store[i * pageSize..<i * pageSize + lengths[i]]), into: out)
                    storedPages += 1
                }
                let c2 = ContinuousClock.now
                for n in lengths { if n == 0 { huge += 1; stored += pageSize } else { stored += n } }
                best = (min(best.c, (c1 - c0) / .seconds(1)), min(best.d, (c2 - c1) / .seconds(1)))
            }
            let mb = Double(pages * pageSize) / 1e6, dmb = Double(storedPages * pageSize) / 1e6
            rows.append(String(format: "| %@ | %.0f | %.0f | %.2f | %d |", config.label, mb / best.c, dmb / best.d,
                               Double(pages * pageSize) / Double(stored), huge))
        }
        print(rows.joined(separator: "\n"))
    }
}
