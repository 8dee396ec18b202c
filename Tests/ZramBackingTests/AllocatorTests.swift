import Testing
import ZramBacking
import ZramTestSupport

@Suite("Block allocation")
struct AllocatorTests {
    @Test("freed blocks are reused lowest first, and reuse replaces the old row")
    func reuseLowestFirst() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("a.db"), pageSize: 4096)
        let first = try writeNew(store, corpusPages(0, 10))
        #expect(first.map(\.0) == Array(1...10))
        for block: Int64 in [7, 3, 5] { try store.free(block) }
        #expect(try store.allocate(2) == [3, 5])
        #expect(try store.allocate(2) == [7, 11])
        // Blocks 3 and 5 were allocated but not rewritten: the stale rows must not be served.
        #expect(backingError { _ = try readBack(store, 3) } == .notFound(3))
        let fresh = corpusPages(200, 2)
        try fresh.withUnsafeBytes { try store.write(blocks: [3, 5], pages: $0) }
        #expect(try readBack(store, 3) == Array(fresh[0..<4096]))
        #expect(try readBack(store, 5) == Array(fresh[4096...]))
        #expect(try readBack(store, 4) == first[3].1)
    }

    @Test("freeing the highest blocks lowers the high-water mark")
    func trailingFree() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("b.db"), pageSize: 4096)
        _ = try store.allocate(6)
        for block: Int64 in [2, 6, 5, 4] { try store.free(block) }
        #expect(try store.allocate(4) == [2, 4, 5, 6])
        #expect(store.stats.blocksInUse == 6)
    }

    @Test("capacity: allocation past it is ENOSPC and all-or-nothing")
    func capacity() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("c.db"), pageSize: 4096, capacityBlocks: 40)
        let written = try writeNew(store, corpusPages(0, 32))
        let error = backingError { _ = try store.allocate(9) }
        guard case .noSpace = error else { Issue.record("expected noSpace, got \(String(describing: error))"); return }
        #expect(error?.errnoName == "ENOSPC")
        #expect(store.stats.blocksInUse == 32)
        let more = try store.allocate(8)
        #expect(more == Array(33...40))
        #expect(backingError { _ = try store.allocate(1) }?.errnoName == "ENOSPC")
        #expect(backingError { _ = try writeNew(store, corpusPages(0, 1)) }?.errnoName == "ENOSPC")
        try store.free(written[4].0)
        #expect(try store.allocate(1) == [written[4].0])
    }

    @Test("contract violations are EINVAL and change nothing")
    func contract() throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("d.db"), pageSize: 4096)
        let page = corpusPages(9, 1)
        let blocks = try store.allocate(2)
        #expect(backingError { try store.free(99) }?.errnoName == "EINVAL")
        // Unallocated block in a batch, duplicate block, empty page, page over pageSize.
        #expect(
            backingError { try page.withUnsafeBytes { try store.write(blocks: [blocks[0], 77], pages: $0) } }?
                .errnoName == "EINVAL")
        let two = page + page
        #expect(
            backingError { try two.withUnsafeBytes { try store.write(blocks: [blocks[0], blocks[0]], pages: $0) } }?
                .errnoName == "EINVAL")
        #expect(
            backingError { try page.withUnsafeBytes { try store.write(blocks: [blocks[0]], pages: $0, lengths: [0]) } }?
                .errnoName == "EINVAL")
        let big = page + page
        #expect(
            backingError { try big.withUnsafeBytes { try store.write(blocks: [blocks[0]], pages: $0, lengths: [big.count]) } }?
                .errnoName == "EINVAL")
        // Nothing moved: both still allocated, unwritten, writable once.
        #expect(store.stats.blocksInUse == 2)
        try two.withUnsafeBytes { try store.write(blocks: blocks, pages: $0) }
        #expect(try readBack(store, blocks[1]) == page)
        // Write-once.
        let error = backingError { try page.withUnsafeBytes { try store.write(blocks: [blocks[0]], pages: $0) } }
        #expect(error?.errnoName == "EINVAL")
        #expect(error?.reason.contains("already written") == true)
        try store.free(blocks[0])
        #expect(backingError { try store.free(blocks[0]) }?.errnoName == "EINVAL")
    }

    @Test("bad init arguments are EINVAL")
    func badInit() {
        let dir = TempDir()
        for size in [0, 1000, 4095, 2 << 20] {
            #expect(backingError { _ = try BackingStore(path: dir.file("x.db"), pageSize: size) }?.errnoName == "EINVAL")
        }
        #expect(
            backingError { _ = try BackingStore(path: dir.file("x.db"), pageSize: 4096, capacityBlocks: 0) }?
                .errnoName == "EINVAL")
    }
}
