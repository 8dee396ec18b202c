import Testing
import ZramDevice
import ZramTestSupport
import Glibc

@Suite struct RecompressTests {
    @Test func zstdRecompressionShrinksTheCorpusAndKeepsBytes() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["zstd"])
        defer { f.remove() }
        let count = 2000
        for i in 0..<count { try f.put(i, corpusPage: i * 7) }
        let before = try f.mmStat()[1]
        try f.device.writeAttribute("recompress", "")
        let after = try f.mmStat()[1]
        #expect(after < before * 9 / 10, "zstd after lz4: \(before) → \(after)")
        for i in 0..<count { #expect(try f.get(i) == Corpus.shared.page(i * 7)) }
        let states = try f.device.blockState()
        #expect(states.contains("....r."), "recompressed slots show r")
        #expect(states.contains("..h..n"), "huge slots no algorithm shrinks are incompressible")
        let debug = f.device.debugStat
        #expect(debug.recompressed > 0 && debug.recompressAttempts >= debug.recompressed)
        // A second run finds nothing left to do: everything is at the top priority or incompressible.
        #expect(try f.device.recompress(RecompressRequest()) == 0)
    }

    @Test func typeMaxPagesAndThresholdLimitTheRun() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["zstd"])
        defer { f.remove() }
        for i in 0..<500 { try f.put(i, corpusPage: i * 11) }
        #expect(try f.device.recompress(RecompressRequest(kind: .idle)) == 0, "nothing is idle yet")
        try f.device.writeAttribute("idle", "all")
        try f.device.writeAttribute("recompress", "type=idle max_pages=10")
        #expect(f.device.debugStat.recompressAttempts == 10)
        // threshold: only objects of at least 3000 bytes, and results must come in under it.
        try f.device.writeAttribute("recompress", "threshold=3000")
        let attempts = f.device.debugStat.recompressAttempts - 10
        #expect(attempts > 0 && attempts < 490)
        for i in 0..<500 { #expect(try f.get(i) == Corpus.shared.page(i * 11)) }
    }

    @Test func slotsKeepTheirPriorityAndAreReadWithIt() throws {
        let f = try DeviceFixture(algorithm: "lz4", secondary: ["lz4hc", "zstd"])
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: 2000 + i) }
        try f.device.writeAttribute("recompress", "priority=1")
        try f.device.writeAttribute("recompress", "algo=zstd")
        for i in 0..<300 { #expect(try f.get(i) == Corpus.shared.page(2000 + i)) }
        expectErrno(.EINVAL) { try f.device.writeAttribute("recompress", "algo=deflate") }
    }
}

@Suite struct DictionaryParamTests {
    @Test func aZstdDictionaryFromTheDataDirIsUsedForEveryPage() throws {
        let f = try DeviceFixture(
            algorithm: "zstd",
            configure: { device in
                // A raw-content dictionary: a slice of pages the device will not store.
                let dict = (0..<64).flatMap { Corpus.shared.page(8000 + $0 * 3) }
                let file = fopen(device.dataDir + "/pages.dict", "w")!
                _ = dict.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
                fclose(file)
                try device.writeAttribute("algorithm_params", "algo=zstd level=3 dict=pages.dict")
            })
        defer { f.remove() }
        for i in 0..<300 { try f.put(i, corpusPage: 8001 + i) }
        for i in 0..<300 { #expect(try f.get(i) == Corpus.shared.page(8001 + i)) }
        let withDict = f.device.mmStat.comprDataSize
        let plain = try DeviceFixture(algorithm: "zstd")
        defer { plain.remove() }
        for i in 0..<300 { try plain.put(i, corpusPage: 8001 + i) }
        #expect(withDict < plain.device.mmStat.comprDataSize)
    }
}
