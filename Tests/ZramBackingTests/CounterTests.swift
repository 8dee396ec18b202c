import Testing
import ZramBacking
import ZramTestSupport

@Suite("bd_stat counters")
struct CounterTests {
    @Test("bd_count, bd_reads, bd_writes in 4 KiB units", arguments: [4096, 16384, 65536])
    func counters(pageSize: Int) throws {
        let dir = TempDir()
        let store = try BackingStore(path: dir.file("s.db"), pageSize: pageSize)
        let units = Int64(pageSize / 4096)
        #expect(store.stats == .init(bdCount: 0, bdReads: 0, bdWrites: 0, blocksInUse: 0))
        let written = try writeNew(store, corpusPages(0, 10 * Int(units)))
        #expect(store.stats == .init(bdCount: 10 * units, bdReads: 0, bdWrites: 10 * units, blocksInUse: 10))
        for (block, _) in written.prefix(3) { _ = try readBack(store, block) }
        _ = try readBack(store, written[0].0)
        #expect(store.stats.bdReads == 4 * units)
        try store.free(written[0].0)
        try store.free(written[1].0)
        _ = try store.allocate(5)  // allocated counts in bd_count, as zram counts at block allocation
        #expect(store.stats == .init(bdCount: 13 * units, bdReads: 4 * units, bdWrites: 10 * units, blocksInUse: 13))
        // Failed reads and contract violations count nothing.
        _ = backingError { _ = try readBack(store, written[0].0) }
        #expect(store.stats.bdReads == 4 * units)
    }
}

@Suite("Error and stat text")
struct TextTests {
    @Test("bd_stat line is zram's %8llu %8llu %8llu")
    func bdStatLine() {
        let stats = BackingStore.Stats(bdCount: 12, bdReads: 123_456_789, bdWrites: 0, blocksInUse: 3)
        #expect(stats.bdStatLine == "      12 123456789        0\n")
    }

    @Test("errno names and one-line reasons")
    func errors() {
        let cases: [(BackingError, String)] = [
            (.noSpace("full"), "ENOSPC: full"),
            (.io("gone"), "EIO: gone"),
            (.notFound(7), "EIO: backing block 7 holds no data"),
            (.invalidPath("bad"), "EINVAL: bad"),
            (.invalidArgument("bad"), "EINVAL: bad"),
            (.busy("taken"), "EBUSY: taken"),
            (.closed, "ENODEV: backing store is closed"),
            (
                .batchFailed(blocks: [3, 4], cause: .noSpace("disk full")),
                "ENOSPC: write batch of 2 block(s) [3, 4] rolled back: disk full"
            ),
            (.batchFailed(blocks: Array(1...32), cause: .io("x")), "EIO: write batch of 32 block(s) [1 … 32] rolled back: x"),
        ]
        for (error, text) in cases {
            #expect(error.description == text)
            #expect(!error.reason.contains("\n"))
        }
        #expect(BackingError.batchFailed(blocks: [1], cause: .io("why")).rootCause == .io("why"))
    }
}
