import ZSmalloc

/// What `allocationRuns` reports for a run of slots (NBD's `base:allocation`).
public struct AllocationRun: Equatable, Sendable {
    /// Slots in the run.
    public var pages: Int
    /// True when every slot of the run reads as zeros without data: empty, or a same-filled zero word.
    public var zero: Bool

    public init(pages: Int, zero: Bool) {
        self.pages = pages
        self.zero = zero
    }
}

/// Block-device style access below and across page granularity, as zram's partial I/O:
/// part of a page is read-modify-written with the slot lock held across the whole
/// cycle, so concurrent partial writes to one page never lose each other's bytes.
/// One slot lock is all that is held while decompressing or compressing.
extension ZramDevice {
    /// Reads `buffer.count` bytes starting `offset` bytes into slot `index`'s page; an empty slot reads as zeros.
    /// - Throws: ERANGE for a slot outside the disk, EINVAL for a range outside the page (both in
    ///   `invalid_io`), EIO when the page cannot be restored (`failed_reads`).
    public func readPartial(_ index: Int, offset: Int, into buffer: UnsafeMutableRawBufferPointer) throws(ZramError) {
        let pageSize = self.pageSize
        try checkPartialRange(index, offset: offset, length: buffer.count)
        try withUnsafeTemporaryAllocation(byteCount: pageSize, alignment: 16) { page throws(ZramError) in
            if try !read(index, into: page) {
                buffer.initializeMemory(as: UInt8.self, repeating: 0)
                return
            }
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: page[offset..<(offset + buffer.count)]))
        }
    }

    /// Replaces `length` bytes at `offset` in slot `index`'s page with `bytes` (zeros when nil),
    /// decompressing, merging and storing the page again under its slot lock.
    /// - Throws: ERANGE / EINVAL for a bad slot or range (`invalid_io`); EIO when the old page cannot
    ///   be restored (`failed_reads`); ENOMEM when the allocator or `mem_limit` refuses
    ///   (`failed_writes`). On any error the slot keeps its old content.
    public func writePartial(_ index: Int, offset: Int, length: Int, _ bytes: UnsafeRawBufferPointer?) throws(ZramError) {
        precondition(bytes == nil || bytes!.count == length, "bytes must be length long")
        try checkPartialRange(index, offset: offset, length: length)
        try requireLive("writing pages") { live throws(ZramError) in
            try checkSlot(live, index)
            try withUnsafeTemporaryAllocation(byteCount: 2 * live.pageSize, alignment: 16) { scratch throws(ZramError) in
                let page = UnsafeMutableRawBufferPointer(rebasing: scratch[..<live.pageSize])
                let spare = UnsafeMutableRawBufferPointer(rebasing: scratch[live.pageSize...])
                try live.slots.withLock(index) { () throws(ZramError) in
                    let state = live.slots[index]
                    if state.flags.contains(.stored) {
                        do throws(ZramError) {
                            try restoreLocked(live, state, into: page)
                        } catch {
                            live.stats.failedReads.add(1, ordering: .relaxed)
                            throw error
                        }
                    } else {
                        page.initializeMemory(as: UInt8.self, repeating: 0)
                    }
                    let target = UnsafeMutableRawBufferPointer(rebasing: page[offset..<(offset + length)])
                    if let bytes { target.copyMemory(from: bytes) } else { target.initializeMemory(as: UInt8.self, repeating: 0) }
                    try storeLocked(live, index, UnsafeRawBufferPointer(page), scratch: spare)
                }
            }
        }
    }

    /// Stores a same-filled zero page in every slot of `slots`: no allocation, no codec (NBD's WRITE_ZEROES).
    /// - Throws: ERANGE for slots outside the disk (`invalid_io`), before any slot changes.
    public func zeroPages(_ slots: Range<Int>) throws(ZramError) {
        try requireLive("writing pages") { live throws(ZramError) in
            try checkSlotRange(live, slots)
            for index in slots {
                live.slots.withLock(index) {
                    freeSlotLocked(live, index)
                    live.slots[index] = SlotState(value: 0, size: 0, flags: [.stored, .same], priority: 0, accessTime: live.now)
                }
                live.stats.samePages.add(1, ordering: .relaxed)
                live.stats.pagesStored.add(1, ordering: .relaxed)
            }
        }
    }

    /// Frees every slot of `slots` (zram's discard over a range); counts `notify_free` per stored page freed.
    /// - Returns: how many slots held a page.
    /// - Throws: ERANGE for slots outside the disk (`invalid_io`), before any slot changes.
    @discardableResult
    public func discardPages(_ slots: Range<Int>) throws(ZramError) -> Int {
        try requireLive("discarding pages") { live throws(ZramError) -> Int in
            try checkSlotRange(live, slots)
            var freed = 0
            for index in slots where live.slots.withLock(index, { freeSlotLocked(live, index) }) { freed += 1 }
            live.stats.notifyFree.add(freed, ordering: .relaxed)
            return freed
        }
    }

    /// Runs of slots that read as zeros without data (empty or same-filled zero) and runs that hold data,
    /// from `slots.lowerBound`, stopping after `maxRuns` runs or at the end of `slots`.
    /// - Throws: ERANGE for slots outside the disk (`invalid_io`).
    public func allocationRuns(_ slots: Range<Int>, maxRuns: Int) throws(ZramError) -> [AllocationRun] {
        try requireLive("reading pages") { live throws(ZramError) -> [AllocationRun] in
            try checkSlotRange(live, slots)
            var runs: [AllocationRun] = []
            for index in slots {
                let zero = live.slots.withLock(index) { () -> Bool in
                    let state = live.slots[index]
                    return !state.flags.contains(.stored) || (state.flags.contains(.same) && state.value == 0)
                }
                if let last = runs.last, last.zero == zero {
                    runs[runs.count - 1].pages += 1
                } else {
                    if runs.count == maxRuns { break }
                    runs.append(AllocationRun(pages: 1, zero: zero))
                }
            }
            return runs
        }
    }

    // MARK: helpers

    private func checkPartialRange(_ index: Int, offset: Int, length: Int) throws(ZramError) {
        let pageSize = self.pageSize
        guard index >= 0 else {
            countInvalidIO()
            throw ZramError(.ERANGE, "slot \(index) is negative")
        }
        guard offset >= 0, length > 0, offset <= pageSize - length else {
            countInvalidIO()
            throw ZramError(.EINVAL, "bytes \(offset)..<\(offset + length) are not inside a \(pageSize)-byte page")
        }
    }

    private func countInvalidIO() {
        _ = withLive { $0.stats.invalidIO.add(1, ordering: .relaxed) }
    }

    private func checkSlotRange(_ live: LiveDevice, _ slots: Range<Int>) throws(ZramError) {
        guard slots.lowerBound >= 0, slots.upperBound <= live.slots.count else {
            live.stats.invalidIO.add(1, ordering: .relaxed)
            throw ZramError(.ERANGE, "slots \(slots.lowerBound)..<\(slots.upperBound) are not inside 0..<\(live.slots.count)")
        }
    }

    /// Stores a whole page in slot `index`, whose lock the caller holds: same-fill detection,
    /// compression with the primary algorithm into `scratch`, allocation, then the swap.
    /// On failure the slot keeps its old content.
    private func storeLocked(
        _ live: LiveDevice, _ index: Int, _ page: UnsafeRawBufferPointer,
        scratch: UnsafeMutableRawBufferPointer
    ) throws(ZramError) {
        if let word = Self.sameFilledWord(page) {
            storeSameLocked(live, index, word)
            return
        }
        let compressed: Int?
        do {
            compressed = try live.streams[0]!.compress(page, into: scratch)
        } catch {
            throw compressionFailed(live, error)
        }
        let (source, huge) = storedForm(live, page, compressed: compressed, in: scratch)
        // At mem_limit a sub-page write fails as in zram: the tiering extensions would need the
        // slot lock this read-modify-write already holds.
        guard let handle = try allocate(live, length: source.count) else {
            live.stats.failedWrites.add(1, ordering: .relaxed)
            throw ZramError(.ENOMEM, "mem_limit (\(memLimit.load(ordering: .relaxed)) bytes) reached")
        }
        live.pool.write(handle, source)
        installLocked(live, index, handle, size: source.count, huge: huge)
    }
}
