import ZComp
import ZSmalloc
import ZSync

/// Codec + allocator with a handle per page index: the storage core without the device's
/// slot logic (no same-page detection, no locks per slot). Indexes are owned by one thread each.
final class PageStore: @unchecked Sendable {
    let pool: ZsPool
    let streams: StreamPool
    private var handles: [Handle?]
    private var lengths: [Int]
    private let totals = Locked((compressed: 0, compressible: 0, stored: 0))

    init(codec: any Codec, streams count: Int, slots: Int = 1 << 16, maxChain: Int = 8) throws {
        pool = ZsPool(pageSize: 4096, maxChain: maxChain)
        streams = try StreamPool(codec: codec, count: count)
        handles = Array(repeating: nil, count: slots)
        lengths = Array(repeating: 0, count: slots)
    }

    var compressedBytes: Int { totals.withLock { $0.compressed } }
    var compressiblePages: Int { totals.withLock { $0.compressible } }
    var storedPages: Int { totals.withLock { $0.stored } }

    func isHuge(_ i: Int) -> Bool { lengths[i] == 4096 }

    /// Compresses and stores `page` under index `i`, replacing what was there.
    func put(_ i: Int, _ page: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { dst in
            let compressed = try! streams.compress(page, into: dst)
            let huge = compressed.map { $0 > pool.hugeClassSize } ?? true
            let source = huge ? page : UnsafeRawBufferPointer(rebasing: dst[..<compressed!])
            let handle = try! pool.malloc(source.count)
            pool.write(handle, source)
            let old = handles[i], oldLength = lengths[i]
            if let old { pool.free(old) }
            handles[i] = handle
            lengths[i] = source.count
            totals.withLock {
                $0.compressed += source.count - oldLength
                $0.compressible += (huge ? 0 : 1) - (old == nil || oldLength == 4096 ? 0 : 1)
                $0.stored += old == nil ? 1 : 0
            }
        }
    }

    /// Restores index `i` into `page`.
    func get(_ i: Int, into page: UnsafeMutableRawBufferPointer) {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { scratch in
            let mapping = pool.readBegin(handles[i]!, length: lengths[i], scratch: scratch)
            defer { pool.readEnd(mapping) }
            try! streams.decompress(mapping.bytes, into: page)
        }
    }

    func freeAll() {
        for i in handles.indices {
            if let h = handles[i] { pool.free(h) }
            handles[i] = nil
        }
    }
}
