import ZSync
import Synchronization

/// A zsmalloc-style pool: variable-sized objects packed into zspages of page-sized chunks.
///
/// Lock order: pool lock → class lock → zspage lock. The pool lock (reader/writer) pins
/// handle → zspage lookups: every access takes it for reading just long enough to find
/// and lock the object's zspage; compaction takes it for writing while it migrates.
/// A zspage lock held for reading may be kept while the holder sleeps (decompressing,
/// copying); compaction only ever try-locks zspages, so it never waits on a reader.
public final class ZsPool: @unchecked Sendable {
    /// Bytes per chunk, the page size the pool was made for.
    public let pageSize: Int
    /// The longest zspage chain a class may use (the kernel's `ZSMALLOC_CHAIN_SIZE`).
    public let maxChain: Int
    /// Objects longer than this are stored alone in a chunk (the huge class).
    public var hugeClassSize: Int { table.hugeClassSize }
    /// The number of distinct (merged) size classes.
    package var classCount: Int { classes.count }

    let table: SizeClassTable
    let classes: [SizeClass]
    let arena: ChunkArena
    let handles = HandleTable()
    let poolLock = PThreadRWLock()
    let compactedChunks = Atomic<Int>(0)

    /// Creates an empty pool.
    /// - Parameters:
    ///   - pageSize: chunk size in bytes (4096, 16384 or 65536).
    ///   - maxChain: the longest zspage chain, 4...16 (default 8, as the kernel).
    public convenience init(pageSize: Int = 4096, maxChain: Int = 8) {
        self.init(pageSize: pageSize, maxChain: maxChain, mapRegion: ChunkArena.map)
    }

    /// Creates an empty pool whose chunk regions come from `mapRegion` (tests slow it down
    /// or make it fail; it returns nil when no memory is left).
    package init(pageSize: Int, maxChain: Int, mapRegion: @escaping @Sendable (Int) -> UnsafeMutableRawPointer?) {
        precondition(pageSize >= 4096 && pageSize & (pageSize - 1) == 0, "page size must be a power of two ≥ 4096")
        precondition((4...16).contains(maxChain), "chain size must be 4...16")
        self.pageSize = pageSize
        self.maxChain = maxChain
        table = SizeClassTable(pageSize: pageSize, maxChain: maxChain)
        classes = table.shapes.enumerated().map { SizeClass(index: $0.offset, shape: $0.element) }
        arena = ChunkArena(chunkSize: pageSize, mapRegion: mapRegion)
    }

    deinit {
        for cls in classes {
            for page in cls.allPages() {
                page.destroy()
            }
        }
        // The arena unmaps every chunk when it goes.
    }

    // MARK: handle entries: zspage address in the low 48 bits, slot in the high 16

    @inline(__always) static func encode(_ page: ZsPagePointer, slot: UInt32) -> UInt64 {
        let address = UInt64(UInt(bitPattern: page))
        precondition(address >> 48 == 0 && slot < 1 << 16, "zspage address or slot out of range")
        return address | UInt64(slot) << 48
    }

    @inline(__always) static func decode(_ entry: UInt64) -> (page: ZsPagePointer, slot: UInt32) {
        (ZsPagePointer(bitPattern: UInt(entry & (1 << 48 - 1)))!, UInt32(entry >> 48))
    }

    // MARK: allocation

    /// Allocates an object of `length` bytes (1...pageSize); its contents are undefined.
    public func malloc(_ length: Int) throws(ZsError) -> Handle {
        precondition(length > 0 && length <= pageSize, "object length \(length) outside 1...\(pageSize)")
        let index = try handles.take()
        let cls = classes[table.classIndex(for: length)]
        cls.lock.lock()
        var page = cls.fullestNonFull()
        if page == nil {
            // The class lock is not held while chunks are found (and maybe mapped).
            cls.lock.unlock()
            let fresh: ZsPagePointer
            do {
                fresh = try newZspage(cls)
            } catch {
                handles.give(index)
                throw error
            }
            cls.lock.lock()
            cls.adopt(fresh)
            // Ours, even if another thread added a zspage meanwhile: an adopted zspage that
            // nobody fills would sit empty until compaction.
            page = fresh
        }
        let slot = page!.takeSlot(for: index)
        cls.account(page!, delta: 1)
        handles[index] = Self.encode(page!, slot: slot)
        cls.lock.unlock()
        return Handle(raw: index)
    }

    /// Frees an object; `handle` must not be used again.
    public func free(_ handle: Handle) {
        var emptied: ZsPagePointer?
        poolLock.readLock()
        let (page, slot) = Self.decode(handles[handle.raw])
        let cls = classes[Int(page.pointee.classIndex)]
        cls.lock.lock()
        page.releaseSlot(slot)
        cls.account(page, delta: -1)
        if page.pointee.inUse == 0 {
            cls.evict(page)
            emptied = page
        }
        cls.lock.unlock()
        poolLock.unlock()
        handles.give(handle.raw)
        if let emptied { release(emptied, chainLength: cls.shape.chainLength) }
    }

    /// Builds an empty zspage for `cls`, not yet linked into it; called with no lock held.
    private func newZspage(_ cls: SizeClass) throws(ZsError) -> ZsPagePointer {
        let chain = cls.shape.chainLength
        return try withUnsafeTemporaryAllocation(of: UnsafeMutableRawPointer.self, capacity: chain) {
            buffer throws(ZsError) -> ZsPagePointer in
            try arena.allocate(chain, into: buffer.baseAddress!)
            return ZsPagePointer.make(classIndex: cls.index, shape: cls.shape, chunks: buffer.baseAddress!)
        }
    }

    /// Returns an unlinked, empty zspage's chunks to the system and frees its metadata.
    func release(_ page: ZsPagePointer, chainLength: Int) {
        arena.release(page.pointee.chunks, count: chainLength)
        page.destroy()
    }

    // MARK: access

    /// An object mapped for reading; end it with `readEnd`.
    public struct Mapping {
        /// The object's bytes: inside the pool, or in the caller's scratch when it straddles chunks.
        public let bytes: UnsafeRawBufferPointer
        fileprivate let page: ZsPagePointer
    }

    /// Maps the first `length` bytes of an object for reading and holds its zspage's read
    /// lock until `readEnd`; the holder may sleep meanwhile.
    /// - Parameter scratch: at least `length` bytes, used only when the object straddles two chunks.
    public func readBegin(_ handle: Handle, length: Int, scratch: UnsafeMutableRawBufferPointer) -> Mapping {
        poolLock.readLock()
        let (page, slot) = Self.decode(handles[handle.raw])
        page.readLock()
        poolLock.unlock()
        let size = classes[Int(page.pointee.classIndex)].shape.size
        precondition(length <= size, "read of \(length) bytes from a \(size)-byte object")
        let offset = Int(slot) * size
        let within = offset % pageSize
        if within + length <= pageSize {
            let start = UnsafeRawPointer(page.pointee.chunks[offset / pageSize] + within)
            return Mapping(bytes: UnsafeRawBufferPointer(start: start, count: length), page: page)
        }
        precondition(scratch.count >= length, "scratch smaller than the object")
        page.copyOut(offset: offset, count: length, chunkSize: pageSize, to: scratch.baseAddress!)
        return Mapping(bytes: UnsafeRawBufferPointer(start: scratch.baseAddress!, count: length), page: page)
    }

    /// Ends a read begun with `readBegin`.
    public func readEnd(_ mapping: Mapping) {
        mapping.page.unlock()
    }

    /// Calls `body` with the object's first `length` bytes (see `readBegin`).
    @inlinable
    public func withObject<R, E: Error>(
        _ handle: Handle, length: Int, scratch: UnsafeMutableRawBufferPointer,
        _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        let mapping = readBegin(handle, length: length, scratch: scratch)
        defer { readEnd(mapping) }
        return try body(mapping.bytes)
    }

    /// Copies `bytes` into the object, from its start.
    public func write(_ handle: Handle, _ bytes: UnsafeRawBufferPointer) {
        poolLock.readLock()
        let (page, slot) = Self.decode(handles[handle.raw])
        page.readLock()
        poolLock.unlock()
        let size = classes[Int(page.pointee.classIndex)].shape.size
        precondition(bytes.count <= size, "write of \(bytes.count) bytes into a \(size)-byte object")
        if let base = bytes.baseAddress {
            page.copyIn(offset: Int(slot) * size, count: bytes.count, chunkSize: pageSize, from: base)
        }
        page.unlock()
    }

    /// The slot size serving objects of `length` bytes (what the object really occupies).
    public func classSize(for length: Int) -> Int {
        classes[table.classIndex(for: length)].shape.size
    }
}
