import ZComp
import ZSmalloc

extension ZramDevice {
    /// Stores one page in slot `index` (zram's write path).
    ///
    /// The page is compressed and copied into the allocator before the slot is locked;
    /// the lock is held only to swap the old content for the new.
    /// - Throws: ERANGE for a slot outside the disk, EINVAL for a wrong length (both
    ///   counted in `invalid_io`), ENOMEM when the allocator or `mem_limit` refuses
    ///   (counted in `failed_writes`; the slot keeps its old content).
    public func write(_ index: Int, _ page: UnsafeRawBufferPointer) throws(ZramError) {
        try requireLive("writing pages") { live throws(ZramError) in
            try checkIO(live, index: index, length: page.count)
            _ = try writePage(live, index, page, wait: true)
        }
    }

    /// Stores `pages` (a whole number of pages) in slots `first`, `first + 1`, …
    ///
    /// The whole request is checked before any slot is touched: a range that leaves the
    /// disk or a body that is not whole pages changes nothing (and counts in `invalid_io`,
    /// as a single page would). A failure part-way (ENOMEM, EIO) leaves the pages before
    /// it written, as a block device's partial write does; the error says how many.
    /// - Throws: ERANGE / EINVAL as above, E2BIG past `maxPages`, then what `write` throws.
    public func write(from first: Int, _ pages: UnsafeRawBufferPointer, maxPages: Int) throws(ZramError) {
        try requireLive("writing pages") { live throws(ZramError) in
            let count = try checkBatch(live, first: first, bytes: pages.count, maxPages: maxPages)
            let size = live.pageSize
            for i in 0..<count {
                do throws(ZramError) {
                    _ = try writePage(live, first + i, UnsafeRawBufferPointer(rebasing: pages[(i * size)..<((i + 1) * size)]), wait: true)
                } catch {
                    throw ZramError(error.errno, "wrote \(i) of \(count) pages: \(error.reason)")
                }
            }
        }
    }

    /// Reads `count` slots from `first` into `pages`; an empty slot reads as zeros (a block
    /// device's unwritten sectors). Checked whole before anything is read, as `write(from:)`.
    public func read(from first: Int, count: Int, into pages: UnsafeMutableRawBufferPointer, maxPages: Int) throws(ZramError) {
        try requireLive("reading pages") { live throws(ZramError) in
            guard count > 0 else { throw ZramError(.EINVAL, "count= must be a positive integer") }
            _ = try checkBatch(live, first: first, bytes: count * live.pageSize, maxPages: maxPages)
            let size = live.pageSize
            for i in 0..<count {
                let page = UnsafeMutableRawBufferPointer(rebasing: pages[(i * size)..<((i + 1) * size)])
                if try readPage(live, first + i, into: page, wait: true) != true { page.initializeMemory(as: UInt8.self, repeating: 0) }
            }
        }
    }

    /// The number of pages in a batch of `bytes` from slot `first`, or the error to send.
    private func checkBatch(_ live: LiveDevice, first: Int, bytes: Int, maxPages: Int) throws(ZramError) -> Int {
        guard bytes > 0, bytes % live.pageSize == 0 else {
            live.stats.invalidIO.add(1, ordering: .relaxed)
            throw ZramError(.EINVAL, "a batch is a whole number of \(live.pageSize)-byte pages, not \(bytes) bytes")
        }
        let count = bytes / live.pageSize
        guard count <= maxPages else { throw ZramError(.E2BIG, "\(count) pages in one batch (at most \(maxPages))") }
        guard first >= 0, first < live.slots.count, count <= live.slots.count - first else {
            live.stats.invalidIO.add(1, ordering: .relaxed)
            throw ZramError(.ERANGE, "pages \(first)..<\(first + count) are outside 0..<\(live.slots.count)")
        }
        return count
    }

    /// The write path for one checked slot and page.
    /// - Parameter wait: false on a polling thread: nothing sleeps, and false comes back
    ///   (the slot unchanged) when a compression stream or the slot lock is busy.
    func writePage(_ live: LiveDevice, _ index: Int, _ page: UnsafeRawBufferPointer, wait: Bool) throws(ZramError) -> Bool {
        if let word = Self.sameFilledWord(page) {
            guard live.slots.lock(index, wait: wait) else { return false }
            storeSameLocked(live, index, word)
            live.slots.unlock(index)
            return true
        }
        return try withUnsafeTemporaryAllocation(byteCount: live.pageSize, alignment: 16) { dst throws(ZramError) -> Bool in
            let compressed: Int?
            do {
                if wait {
                    compressed = try live.streams[0]!.compress(page, into: dst)
                } else {
                    guard let result = try live.streams[0]!.compressIfFree(page, into: dst) else { return false }
                    compressed = result.length
                }
            } catch {
                throw compressionFailed(live, error)
            }
            let (source, huge) = storedForm(live, page, compressed: compressed, in: dst)
            guard let handle = try allocate(live, length: source.count) else {
                // At mem_limit: the zramd extensions may make room (SQLite I/O or eviction, so
                // never on a polling thread); zram refuses the write.
                if !wait, tieringMakesRoom(live) { return false }
                return try writeOverLimit(live, index, page: page, object: source, huge: huge)
            }
            return installObject(live, index, handle, object: source, huge: huge, wait: wait)
        }
    }

    /// What a page is stored as: the `compressed` bytes at the start of `dst`, or the page
    /// itself when compression did not bring it under the huge threshold (zram's ZRAM_HUGE).
    @inline(__always)
    func storedForm(
        _ live: LiveDevice, _ page: UnsafeRawBufferPointer, compressed: Int?, in dst: UnsafeMutableRawBufferPointer
    ) -> (object: UnsafeRawBufferPointer, huge: Bool) {
        guard let compressed, compressed <= live.hugeThreshold else { return (page, true) }
        return (UnsafeRawBufferPointer(rebasing: dst[..<compressed]), false)
    }

    /// A codec's failure on the write path: counted in `failed_writes`, answered EIO.
    func compressionFailed(_ live: LiveDevice, _ error: any Error) -> ZramError {
        live.stats.failedWrites.add(1, ordering: .relaxed)
        return ZramError(.EIO, "compression failed: \(error)")
    }

    /// Copies `object` into the allocated `handle` and swaps it into slot `index`, freeing
    /// what the slot held; false (the handle freed) when `wait` is false and the slot is locked.
    func installObject(
        _ live: LiveDevice, _ index: Int, _ handle: Handle, object: UnsafeRawBufferPointer,
        huge: Bool, wait: Bool
    ) -> Bool {
        live.pool.write(handle, object)
        guard live.slots.lock(index, wait: wait) else {
            live.pool.free(handle)
            return false
        }
        installLocked(live, index, handle, size: object.count, huge: huge)
        live.slots.unlock(index)
        return true
    }

    /// Points slot `index` at `handle`, an object of `size` bytes already written, freeing
    /// what the slot held; the caller holds the slot lock.
    func installLocked(_ live: LiveDevice, _ index: Int, _ handle: Handle, size: Int, huge: Bool) {
        freeSlotLocked(live, index)
        live.slots[index] = SlotState(
            value: UInt64(handle.raw), size: size, flags: huge ? [.stored, .huge] : [.stored],
            priority: 0, accessTime: live.now)
        live.stats.comprDataSize.add(size, ordering: .relaxed)
        live.stats.pagesStored.add(1, ordering: .relaxed)
        if huge {
            live.stats.hugePages.add(1, ordering: .relaxed)
            live.stats.hugePagesSince.add(1, ordering: .relaxed)
        }
    }

    /// Stores a same-filled page's word in slot `index`, freeing what it held; the caller
    /// holds the slot lock.
    func storeSameLocked(_ live: LiveDevice, _ index: Int, _ word: UInt64) {
        freeSlotLocked(live, index)
        live.slots[index] = SlotState(value: word, size: 0, flags: [.stored, .same], priority: 0, accessTime: live.now)
        live.stats.samePages.add(1, ordering: .relaxed)
        live.stats.pagesStored.add(1, ordering: .relaxed)
    }

    /// Reads slot `index` into `page` (zram's read path).
    /// - Returns: false when the slot holds nothing (`page` untouched).
    /// - Throws: ERANGE / EINVAL for a bad index or length (`invalid_io`); EIO when the
    ///   stored bytes cannot be restored (`failed_reads`).
    public func read(_ index: Int, into page: UnsafeMutableRawBufferPointer) throws(ZramError) -> Bool {
        try requireLive("reading pages") { live throws(ZramError) -> Bool in
            try checkIO(live, index: index, length: page.count)
            return try readPage(live, index, into: page, wait: true)!
        }
    }

    /// The read path for one checked slot.
    /// - Parameter wait: false on a polling thread: nil comes back at once when the slot lock
    ///   or a decompression stream is busy or the page is in the backing store (SQLite I/O),
    ///   decided under the slot lock.
    /// - Returns: whether the slot held a page; nil when it would have to wait.
    func readPage(_ live: LiveDevice, _ index: Int, into page: UnsafeMutableRawBufferPointer, wait: Bool) throws(ZramError) -> Bool? {
        guard live.slots.lock(index, wait: wait) else { return nil }
        defer { live.slots.unlock(index) }
        var state = live.slots[index]
        guard state.flags.contains(.stored) else { return false }
        if !wait, state.flags.contains(.writtenBack) { return nil }
        do throws(ZramError) {
            guard try restoreLocked(live, state, into: page, wait: wait) else { return nil }
        } catch {
            live.stats.failedReads.add(1, ordering: .relaxed)
            throw error
        }
        state.flags.subtract([.idle, .postProcessing])
        if state.flags.contains(.writtenBack), wait {
            promoteIfHot(live, index, &state, page: UnsafeRawBufferPointer(page))
        }
        state.flags.insert(.referenced)
        state.accessTime = live.now
        live.slots[index] = state
        return true
    }

    /// Frees slot `index` (zram's discard); idempotent.
    public func discard(_ index: Int) throws(ZramError) {
        try requireLive("discarding pages") { live throws(ZramError) in
            _ = try discardSlot(live, index, wait: true)
        }
    }

    /// The discard path; false, with nothing changed, when `wait` is false and the slot is locked.
    func discardSlot(_ live: LiveDevice, _ index: Int, wait: Bool) throws(ZramError) -> Bool {
        try checkSlot(live, index)
        guard live.slots.lock(index, wait: wait) else { return false }
        let freed = freeSlotLocked(live, index)
        live.slots.unlock(index)
        if freed { live.stats.notifyFree.add(1, ordering: .relaxed) }
        return true
    }

    /// The number of slots (disksize / page size), 0 before initialisation.
    package var slotCount: Int { withLive { $0.slots.count } ?? 0 }

    // MARK: helpers shared by the write, read and post-processing paths

    /// ERANGE (counted in `invalid_io`) for a slot outside the disk.
    func checkSlot(_ live: LiveDevice, _ index: Int) throws(ZramError) {
        guard index >= 0, index < live.slots.count else {
            live.stats.invalidIO.add(1, ordering: .relaxed)
            throw ZramError(.ERANGE, "slot \(index) is outside 0..<\(live.slots.count)")
        }
    }

    func checkIO(_ live: LiveDevice, index: Int, length: Int) throws(ZramError) {
        try checkSlot(live, index)
        guard length == live.pageSize else {
            live.stats.invalidIO.add(1, ordering: .relaxed)
            throw ZramError(.EINVAL, "a page is exactly \(live.pageSize) bytes, not \(length)")
        }
    }

    /// Allocates `length` bytes within `mem_limit`; nil when the limit would be passed
    /// (nothing allocated). Kicks the automatic writer past its high watermark.
    /// - Throws: ENOMEM when the allocator itself is out of memory (`failed_writes`).
    func allocate(_ live: LiveDevice, length: Int) throws(ZramError) -> Handle? {
        let handle: Handle
        do {
            handle = try live.pool.malloc(length)
        } catch {
            live.stats.failedWrites.add(1, ordering: .relaxed)
            throw ZramError(.ENOMEM, "the allocator is out of memory")
        }
        let limit = memLimit.load(ordering: .relaxed)
        guard limit > 0 else { return handle }
        let used = live.pool.memoryUsed
        kickTierWriter(used: used, limit: limit)
        guard used <= limit else {
            live.pool.free(handle)
            return nil
        }
        return handle
    }

    /// Restores a stored slot's page; the caller holds the slot lock.
    /// - Returns: false, with `page` unspecified, only when `wait` is false and every
    ///   decompression stream is busy.
    @discardableResult
    func restoreLocked(
        _ live: LiveDevice, _ state: SlotState, into page: UnsafeMutableRawBufferPointer,
        wait: Bool = true
    ) throws(ZramError) -> Bool {
        if state.flags.contains(.same) {
            Self.fill(page, with: state.value)
        } else if state.flags.contains(.writtenBack) {
            try readBacking(live, state, into: page)
        } else if state.flags.contains(.huge) {
            copyObject(live, state, into: page)
        } else {
            return try decompressObject(live, state, into: page, wait: wait)
        }
        return true
    }

    /// Copies a slot's allocator object as stored (the compressed bytes, or the page itself
    /// when huge) to the start of `page`; the caller holds the slot lock.
    func copyObject(_ live: LiveDevice, _ state: SlotState, into page: UnsafeMutableRawBufferPointer) {
        live.pool.withObject(Handle(raw: UInt32(state.value)), length: state.size, scratch: page) { bytes in
            if bytes.baseAddress != UnsafeRawPointer(page.baseAddress) { page.copyMemory(from: bytes) }
        }
    }

    /// Decompresses an allocator object with the stream pool of the slot's priority.
    /// - Returns: false when `wait` is false and every stream is busy.
    func decompressObject(
        _ live: LiveDevice, _ state: SlotState, into page: UnsafeMutableRawBufferPointer,
        wait: Bool
    ) throws(ZramError) -> Bool {
        let handle = Handle(raw: UInt32(state.value))
        guard let streams = live.streams[state.priority] else {
            throw ZramError(.EIO, "no algorithm for priority \(state.priority)")
        }
        return try withUnsafeTemporaryAllocation(byteCount: state.size, alignment: 16) { scratch throws(ZramError) -> Bool in
            let mapping = live.pool.readBegin(handle, length: state.size, scratch: scratch)
            defer { live.pool.readEnd(mapping) }
            do {
                if wait {
                    try streams.decompress(mapping.bytes, into: page)
                    return true
                }
                return try streams.decompressIfFree(mapping.bytes, into: page)
            } catch {
                throw ZramError(.EIO, "stored page does not decompress: \(error)")
            }
        }
    }

    /// Frees whatever slot `index` holds and counts it; the caller holds the slot lock.
    /// - Returns: true when the slot held a page.
    @discardableResult
    func freeSlotLocked(_ live: LiveDevice, _ index: Int) -> Bool {
        let state = live.slots[index]
        guard state.flags.contains(.stored) else {
            if state != .empty { live.slots[index] = .empty }
            return false
        }
        if state.flags.contains(.same) {
            live.stats.samePages.subtract(1, ordering: .relaxed)
        } else if state.flags.contains(.writtenBack) {
            freeBackingBlock(live, state)
        } else {
            live.pool.free(Handle(raw: UInt32(state.value)))
            live.stats.comprDataSize.subtract(state.size, ordering: .relaxed)
            if state.flags.contains(.huge) { live.stats.hugePages.subtract(1, ordering: .relaxed) }
        }
        live.stats.pagesStored.subtract(1, ordering: .relaxed)
        live.slots[index] = .empty
        return true
    }

    /// The repeated word when the page is one machine word repeated, else nil.
    @inline(__always)
    static func sameFilledWord(_ page: UnsafeRawBufferPointer) -> UInt64? {
        let words = page.count / 8
        let first = page.loadUnaligned(as: UInt64.self)
        // The last word first: most pages that are not same-filled differ there.
        guard page.loadUnaligned(fromByteOffset: (words - 1) * 8, as: UInt64.self) == first else { return nil }
        for i in 1..<words where page.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != first {
            return nil
        }
        return first
    }

    static func fill(_ page: UnsafeMutableRawBufferPointer, with word: UInt64) {
        for i in 0..<(page.count / 8) { page.storeBytes(of: word, toByteOffset: i * 8, as: UInt64.self) }
    }
}
