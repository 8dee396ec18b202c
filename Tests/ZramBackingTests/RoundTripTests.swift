import Foundation
import Testing
import ZramBacking
import ZramTestSupport

@Suite("Round trips")
struct RoundTripTests {
    @Test("batches of corpus pages read back exact")
    func corpusBatches() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("zram0.db"), pageSize: 4096)
        var written: [(Int64, [UInt8])] = []
        for batch in 0..<20 {  // 20 transactions of writeback_batch_size 32
            written += try writeNew(store, corpusPages(batch * 32, 32))
        }
        #expect(written.count == 640)
        #expect(written.map(\.0) == Array(1...640))
        for (block, page) in written {
            #expect(try readBack(store, block) == page, "block \(block)")
        }
    }

    @Test("pages shorter than pageSize (compressed writeback) keep their length", arguments: [4096, 16384])
    func shortLengths(pageSize: Int) throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("c.db"), pageSize: pageSize)
        var rng = SplitMix64(seed: 7)
        let lengths = (0..<32).map { i in i == 0 ? 1 : i == 1 ? pageSize : Int.random(in: 1...pageSize, using: &rng) }
        let source = corpusPages(500, 32 * pageSize / 4096)
        let blocks = try source.withUnsafeBytes { try store.writeNew(pages: $0, lengths: lengths) }
        for (i, block) in blocks.enumerated() {
            let expected = Array(source[(i * pageSize)..<(i * pageSize + lengths[i])])
            #expect(try readBack(store, block) == expected)
        }
    }

    @Test("16 KiB pages round trip")
    func bigPages() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("d.db"), pageSize: 16384)
        let written = try writeNew(store, corpusPages(1000, 4 * 32))
        #expect(written.count == 32)
        for (block, page) in written { #expect(try readBack(store, block) == page) }
    }

    @Test("reads of blocks that hold nothing are notFound (EIO)")
    func notFound() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("e.db"), pageSize: 4096)
        let written = try writeNew(store, corpusPages(0, 2))
        let allocatedOnly = try store.allocate(1)[0]
        for block: Int64 in [0, -1, 999, allocatedOnly] {
            let error = backingError { _ = try readBack(store, block) }
            #expect(error == .notFound(block))
            #expect(error?.errnoName == "EIO")
        }
        try store.free(written[0].0)
        #expect(backingError { _ = try readBack(store, written[0].0) } == .notFound(written[0].0))
    }

    @Test("a too-small destination buffer is EINVAL, not a partial copy")
    func smallBuffer() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("f.db"), pageSize: 4096)
        let block = try writeNew(store, corpusPages(3, 1))[0].0
        var small = [UInt8](repeating: 0, count: 100)
        let error = backingError { _ = try small.withUnsafeMutableBytes { try store.read(block: block, into: $0) } }
        #expect(error?.errnoName == "EINVAL")
    }

    @Test("close() makes later calls ENODEV and frees the file for a new store")
    func closeReleases() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("g.db"), pageSize: 4096)
        let block = try writeNew(store, corpusPages(3, 1))[0].0
        store.close()
        store.close()
        #expect(backingError { _ = try readBack(store, block) } == .closed)
        #expect(backingError { _ = try store.allocate(1) }?.errnoName == "ENODEV")
        let again = try BackingStore(path: dir.file("g.db"), pageSize: 4096)
        #expect(again.discardedBlocks == 1)
    }
}
