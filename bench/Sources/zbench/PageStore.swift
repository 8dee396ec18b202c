import ZComp
import ZSmalloc

/// Codec + allocator with a handle per page index: the storage core without the device's
/// slot logic (no same-page detection, no locks per slot). Indexes are owned by one thread each.
final class PageStore: @unchecked Sendable {
    let pool: ZsPool
    let streams: StreamPool
    // Raw arrays: each index is touched by one thread only, and the bench should
    // measure the store, not Swift's exclusivity checks on its own bookkeeping.
    private let handles: UnsafeMutablePointer<UInt32>
    private let lengths: UnsafeMutablePointer<Int>
    private let slots: Int

    init(codec: any Codec, streams count: Int, slots: Int = 1 << 16, maxChain: Int = 8) throws {
        pool = ZsPool(pageSize: 4096, maxChain: maxChain)
        streams = try StreamPool(codec: codec, count: count)
        self.slots = slots
        handles = .allocate(capacity: slots)
        handles.initialize(repeating: 0, count: slots)
        lengths = .allocate(capacity: slots)
        lengths.initialize(repeating: 0, count: slots)
    }

    deinit {
        handles.deallocate()
        lengths.deallocate()
    }

    /// Sum of stored lengths (a huge page counts a whole page); read when no thread writes.
    var compressedBytes: Int { (0..<slots).reduce(0) { $0 + lengths[$1] } }
    var compressiblePages: Int { (0..<slots).filter { lengths[$0] > 0 && lengths[$0] < 4096 }.count }
    var storedPages: Int { (0..<slots).filter { handles[$0] != 0 }.count }

    func isHuge(_ i: Int) -> Bool { lengths[i] == 4096 }

    /// Compresses and stores `page` under index `i`, replacing what was there.
    func put(_ i: Int, _ page: UnsafeRawBufferPointer) {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { dst in
            let compressed = try! streams.compress(page, into: dst)
            let huge = compressed.map { $0 > pool.hugeClassSize } ?? true
            let source = huge ? page : UnsafeRawBufferPointer(rebasing: dst[..<compressed!])
            let handle = try! pool.malloc(source.count)
            pool.write(handle, source)
            if handles[i] != 0 { pool.free(Handle(raw: handles[i])) }
            handles[i] = handle.raw
            lengths[i] = source.count
        }
    }

    /// Restores index `i` into `page` (a huge page is copied).
    func get(_ i: Int, into page: UnsafeMutableRawBufferPointer) {
        withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 16) { scratch in
            let mapping = pool.readBegin(Handle(raw: handles[i]), length: lengths[i], scratch: scratch)
            defer { pool.readEnd(mapping) }
            if lengths[i] == 4096 {
                page.copyMemory(from: mapping.bytes)
            } else {
                try! streams.decompress(mapping.bytes, into: page)
            }
        }
    }

    func freeAll() {
        for i in 0..<slots where handles[i] != 0 {
            pool.free(Handle(raw: handles[i]))
            handles[i] = 0
            lengths[i] = 0
        }
    }
}
