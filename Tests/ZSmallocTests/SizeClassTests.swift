import Testing
@testable import ZSmalloc

@Suite struct SizeClassTests {
    @Test(arguments: [4, 8, 16])
    func everyLengthMapsToTheSmallestClassThatHoldsIt(chain: Int) {
        let pool = ZsPool(pageSize: 4096, maxChain: chain)
        let sizes = pool.classStats().map(\.size)
        #expect(sizes == sizes.sorted())
        #expect(sizes.first == 32 && sizes.last == 4096)
        for length in 1...4096 {
            let size = pool.classSize(for: length)
            #expect(size >= length)
            // No surviving class between the length and the one chosen.
            #expect(!sizes.contains { $0 >= length && $0 < size })
        }
    }

    @Test func mergingKeepsFewerClassesThanNominalAndLongerChainsRaiseTheHugeWatermark() {
        let watermarks = [4, 8, 16].map { ZsPool(pageSize: 4096, maxChain: $0).hugeClassSize }
        #expect(watermarks == watermarks.sorted() && watermarks[0] < watermarks[2])
        let pool = ZsPool(pageSize: 4096, maxChain: 8)
        #expect(pool.classCount < 255 && pool.classCount > 100)
        // The largest class above the watermark is the page itself, one per chunk.
        #expect(pool.classSize(for: pool.hugeClassSize + 1) == 4096)
        #expect(pool.classSize(for: pool.hugeClassSize) == pool.hugeClassSize)
    }

    @Test func chosenChainWastesLeast() {
        let table = SizeClassTable(pageSize: 4096, maxChain: 8)
        for shape in table.shapes {
            let used = Double(shape.objectsPerZspage * shape.size) / Double(shape.chainLength * 4096)
            for chain in 1...8 {
                let other = Double((chain * 4096) / shape.size * shape.size) / Double(chain * 4096)
                #expect(other <= used + 1e-12)
            }
        }
    }

    @Test(arguments: [16384, 65536])
    func largerPagesWork(pageSize: Int) throws {
        let pool = ZsPool(pageSize: pageSize)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { scratch.deallocate() }
        var live: [(Handle, Int, Int)] = []
        for i in 0..<500 {
            let length = 1 + (i * 7919) % pageSize
            live.append((try pool.store(length: length, tag: i), length, i))
        }
        for (h, length, tag) in live { #expect(pool.holds(h, length: length, tag: tag, scratch: scratch)) }
        for (h, _, _) in live { pool.free(h) }
        #expect(pool.chunksInUse == 0)
    }
}
