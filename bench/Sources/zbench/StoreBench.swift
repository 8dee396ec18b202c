import Glibc
import ZComp
import ZSmalloc

/// `zbench store`: the codecs alone (the limit) against codec + allocator, and the
/// allocator's memory against the compressed bytes it holds and against one malloc per object.
struct StoreBench {
    let corpus: CorpusFile
    let rounds = 3
    /// How many times the corpus is stored for the memory measurements.
    let copies = 16

    /// One row of the throughput table.
    struct Speed {
        var algorithm: String
        var threads: Int
        var rawCompress = 0.0, rawDecompress = 0.0, storeWrite = 0.0, storeRead = 0.0
        var ratio = 0.0
    }

    /// Raw codec MB/s: every corpus page through one stream, no pool, no allocator.
    func rawSpeed(_ codec: any Codec, threads: Int) throws -> (compress: Double, decompress: Double, ratio: Double) {
        let pages = corpus.pageCount
        // Compressed copies, for the decompression pass.
        let stream = try codec.makeStream()
        let compressed = UnsafeMutableRawBufferPointer.allocate(byteCount: pages * 4096, alignment: 16)
        defer { compressed.deallocate() }
        var lengths = [Int](repeating: 0, count: pages)
        var total = 0
        for i in 0..<pages {
            let dst = UnsafeMutableRawBufferPointer(rebasing: compressed[(i * 4096)..<((i + 1) * 4096)])
            lengths[i] = try stream.compress(corpus.page(i), into: dst) ?? 0
            total += lengths[i] == 0 ? 4096 : lengths[i]
        }
        let frozenLengths = lengths
        let src = UnsafeRawBufferPointer(compressed)
        let bytes = Double(pages * 4096)
        // Pages that do not compress are skipped when decompressing (the store copies them).
        let compressibleBytes = Double(frozenLengths.filter { $0 > 0 }.count * 4096)
        var c: [Double] = [], d: [Double] = []
        for _ in 0..<rounds {
            c.append(
                bytes
                    / Measure.seconds {
                        Measure.onThreads(threads) { t in
                            let s = try! codec.makeStream()
                            let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                            for i in stride(from: t, to: pages, by: threads) { _ = try! s.compress(corpus.page(i), into: dst) }
                            dst.deallocate()
                        }
                    })
            d.append(
                compressibleBytes
                    / Measure.seconds {
                        Measure.onThreads(threads) { t in
                            let s = try! codec.makeStream()
                            let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                            for i in stride(from: t, to: pages, by: threads) where frozenLengths[i] > 0 {
                                try! s.decompress(UnsafeRawBufferPointer(rebasing: src[(i * 4096)..<(i * 4096 + frozenLengths[i])]), into: dst)
                            }
                            dst.deallocate()
                        }
                    })
        }
        return (Measure.median(c) / 1e6, Measure.median(d) / 1e6, bytes / Double(total))
    }

    /// Store MB/s: compress through the stream pool, allocate, copy in; map, decompress.
    /// `fill` writes every page into a new, empty store (its memory comes fresh from the
    /// system); `overwrite` writes them again into the filled store (memory is reused).
    func storeSpeed(_ codec: any Codec, threads: Int) throws -> (fill: Double, overwrite: Double, read: Double) {
        let pages = corpus.pageCount
        let bytes = Double(pages * 4096)
        var f: [Double] = [], o: [Double] = [], r: [Double] = []
        for _ in 0..<rounds {
            let store = try PageStore(codec: codec, streams: max(2, threads))
            let writeAll = {
                Measure.onThreads(threads) { t in
                    for i in stride(from: t, to: pages, by: threads) { store.put(i, corpus.page(i)) }
                }
            }
            f.append(bytes / Measure.seconds(writeAll))
            o.append(bytes / Measure.seconds(writeAll))
            let compressibleBytes = Double(store.compressiblePages * 4096)
            r.append(
                compressibleBytes
                    / Measure.seconds {
                        Measure.onThreads(threads) { t in
                            let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
                            for i in stride(from: t, to: pages, by: threads) where !store.isHuge(i) { store.get(i, into: dst) }
                            dst.deallocate()
                        }
                    })
            store.freeAll()
        }
        return (Measure.median(f) / 1e6, Measure.median(o) / 1e6, Measure.median(r) / 1e6)
    }

    /// Memory after filling with `copies` × the corpus, after overwriting a random half, after compaction;
    /// and the same objects with one malloc each.
    func memory(_ codec: any Codec, maxChain: Int = 8) throws -> [String: Double] {
        let pages = corpus.pageCount * copies
        _ = malloc_trim(0)
        let store = try PageStore(codec: codec, streams: 2, slots: pages, maxChain: maxChain)
        // The bench's own per-slot arrays are not the allocator's: leave them out.
        let rssBefore = Measure.rss()
        for i in 0..<pages { store.put(i, corpus.page(i % corpus.pageCount)) }
        let fill = Double(store.pool.memoryUsed) / Double(store.compressedBytes)
        let rssStore = Measure.rss() - rssBefore
        let fillCompressed = store.compressedBytes
        var rng = SystemRandomNumberGenerator()
        for i in 0..<pages where Bool.random(using: &rng) {
            store.put(i, corpus.page(Int.random(in: 0..<corpus.pageCount, using: &rng)))
        }
        let churn = Double(store.pool.memoryUsed) / Double(store.compressedBytes)
        let freed = store.pool.compact()
        let compact = Double(store.pool.memoryUsed) / Double(store.compressedBytes)
        let rssAfterCompact = Measure.rss() - rssBefore
        let compactCompressed = store.compressedBytes
        let objects = store.storedPages
        store.freeAll()

        // The naive design: each compressed object in its own malloc. Measured as RSS growth
        // after giving the heap's free memory back (malloc_trim), so earlier runs do not hide it.
        let stream = try codec.makeStream()
        let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { dst.deallocate() }
        let blocks = UnsafeMutablePointer<UnsafeMutableRawPointer>.allocate(capacity: pages)
        defer { blocks.deallocate() }
        var lengths = [Int](repeating: 0, count: pages)
        _ = malloc_trim(0)
        let rssMallocBefore = Measure.rss()
        /// Compresses `page` into a new malloc block for slot `i`, freeing the old one.
        func keep(_ i: Int, _ page: UnsafeRawBufferPointer) throws {
            let compressed = try stream.compress(page, into: dst)
            let length = compressed ?? 4096
            let block = malloc(length)!
            memcpy(block, compressed == nil ? page.baseAddress! : UnsafeRawPointer(dst.baseAddress!), length)
            if lengths[i] > 0 { free(blocks[i]) }
            blocks[i] = block
            lengths[i] = length
        }
        for i in 0..<pages { try keep(i, corpus.page(i % corpus.pageCount)) }
        let mallocFill = Double(Measure.rss() - rssMallocBefore) / Double(lengths.reduce(0, +))
        var churnRng = SystemRandomNumberGenerator()
        for i in 0..<pages where Bool.random(using: &churnRng) {
            try keep(i, corpus.page(Int.random(in: 0..<corpus.pageCount, using: &churnRng)))
        }
        let mallocChurn = Double(Measure.rss() - rssMallocBefore) / Double(lengths.reduce(0, +))
        for i in 0..<pages { free(blocks[i]) }
        _ = malloc_trim(0)
        return [
            "pages": Double(pages),
            "mem_over_compressed_after_fill": fill,
            "mem_over_compressed_after_churn": churn,
            "mem_over_compressed_after_compact": compact,
            "pages_compacted": Double(freed),
            "compressed_bytes": Double(fillCompressed),
            "store_rss_over_compressed_after_fill": Double(rssStore) / Double(fillCompressed),
            "store_rss_over_compressed_after_compact": Double(rssAfterCompact) / Double(compactCompressed),
            "malloc_design_over_compressed": mallocFill,
            "malloc_design_over_compressed_after_churn": mallocChurn,
            "objects": Double(objects),
        ]
    }
}
