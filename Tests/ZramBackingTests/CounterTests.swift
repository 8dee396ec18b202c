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
