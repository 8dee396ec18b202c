import ZSmalloc
import ZramBacking

/// A parsed `writeback` request: a kind, explicit slots, or both.
package struct WritebackRequest: Sendable, Equatable {
    package var kind: SlotKind?
    package var ranges: [ClosedRange<Int>]
    package init(kind: SlotKind? = nil, ranges: [ClosedRange<Int>] = []) {
        self.kind = kind
        self.ranges = ranges
    }
}

extension ZramDevice {
    /// What `request` writes to: ENODEV without a backing device, ERANGE for a slot outside the disk.
    func checkWriteback(_ live: LiveDevice, _ request: WritebackRequest) throws(ZramError) -> BackingStore {
        guard let backing = live.backing else { throw ZramError(.ENODEV, "\(name) has no backing_dev") }
        for range in request.ranges where range.upperBound >= live.slots.count {
            throw ZramError(.ERANGE, "page index \(range.upperBound) is outside 0..<\(live.slots.count)")
        }
        return backing
    }

    /// Writes matching slots' pages to the backing store and frees their memory.
    ///
    /// Candidates go largest compressed size first, `writeback_batch_size` pages per
    /// SQLite transaction. Each slot is locked only to copy its page out and, after the
    /// transaction, to swap its object for the block; a slot touched meanwhile keeps its
    /// new content and its block is freed.
    /// - Returns: pages written back.
    /// - Throws: ENODEV without a backing device, ERANGE for a slot outside the disk,
    ///   EIO when `writeback_limit` is exhausted before any page or the store fails.
    /// - Parameter progress: counters to publish and a cancellation to honour between batches.
    @discardableResult
    package func writeback(_ request: WritebackRequest, progress: JobProgress? = nil) throws(ZramError) -> Int {
        try withMaintenance("writeback") { live throws(ZramError) -> Int in
            let backing = try checkWriteback(live, request)
            postProcessLock.lock()
            defer { postProcessLock.unlock() }
            let candidates = pickForWriteback(live, request)
            progress?.begin(total: candidates.count)
            return try writeBack(live, backing, candidates, progress: progress)
        }
    }

    /// Marks and returns the slots to write back, largest first.
    private func pickForWriteback(_ live: LiveDevice, _ request: WritebackRequest) -> [Int] {
        let required = SlotFlags.stored.union(request.kind?.requiredFlags ?? [])
        let indexes: [Int] =
            request.ranges.isEmpty
            ? Array(0..<live.slots.count)
            : request.ranges.flatMap { Array($0) }
        return markPostProcessing(live, indexes) { state in
            state.flags.isSuperset(of: required) && state.flags.isDisjoint(with: [.same, .writtenBack])
        }
    }

    /// Writes the marked `candidates` back in batches of `writeback_batch_size`, in three
    /// phases per batch: copy out (`copyBatchOut`), one SQLite transaction, swap in (`swapIn`).
    /// Stops between batches when the budget is spent or `progress` asks; unmarks what it
    /// did not reach on every exit.
    /// - Returns: pages written back.
    func writeBack(
        _ live: LiveDevice, _ backing: BackingStore, _ candidates: [Int],
        progress: JobProgress? = nil
    ) throws(ZramError) -> Int {
        let pageSize = live.pageSize
        let unitsPerPage = max(1, pageSize / 4096)
        let batchSize = writebackBatchSize.load(ordering: .relaxed)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: batchSize * pageSize, alignment: 16)
        defer { buffer.deallocate() }
        var written = 0
        var next = 0
        defer { clearPostProcessing(live, candidates[next...]) }
        while next < candidates.count {
            progress?.update(examined: next, processed: written)
            // Cancelled between batches: the deferred clear un-marks every slot not yet taken.
            if stopRequested(progress) { return written }
            // The budget is counted in pages: a batch takes no more than what is left of it.
            var room = batchSize
            if writebackLimitEnabled.load(ordering: .relaxed) {
                let left = writebackBudget.load(ordering: .relaxed)
                guard left >= unitsPerPage else {
                    if written == 0 { throw ZramError(.EIO, "writeback_limit is exhausted (\(left) units left)") }
                    return written
                }
                room = min(room, left / unitsPerPage)
            }
            // Phase 1: copy a batch of pages out, each under its own slot lock only.
            let (picked, lengths) = copyBatchOut(live, candidates, from: &next, room: room, into: buffer)
            if picked.isEmpty { continue }
            if writebackLimitEnabled.load(ordering: .relaxed) {
                writebackBudget.subtract(picked.count * unitsPerPage, ordering: .relaxed)
            }
            // Phase 2: the SQLite transaction, with no lock held.
            let blocks: [Int64]
            do {
                blocks = try backing.writeNew(
                    pages: UnsafeRawBufferPointer(rebasing: buffer[..<(picked.count * pageSize)]), lengths: lengths)
            } catch {
                if writebackLimitEnabled.load(ordering: .relaxed) {
                    writebackBudget.add(picked.count * unitsPerPage, ordering: .relaxed)
                }
                for item in picked { clearPostProcessing(live, [item.index]) }
                live.stats.failedWrites.add(picked.count, ordering: .relaxed)
                throw ZramError(Errno(error), "writeback to \(backing.path) failed: \(error.reason)")
            }
            // Phase 3: point each slot at its block, each under its own slot lock again.
            written += swapIn(live, backing, picked, blocks)
        }
        progress?.update(examined: next, processed: written)
        return written
    }

    /// Phase 1 of `writeBack`: copies up to `room` marked candidates from `next` on into
    /// `buffer` (the stored object with `compressed_writeback`, else the page), each under
    /// its own slot lock; a slot touched since it was marked is skipped.
    /// - Returns: the slots copied with the state they had, and each copy's length.
    private func copyBatchOut(
        _ live: LiveDevice, _ candidates: [Int], from next: inout Int, room: Int, into buffer: UnsafeMutableRawBufferPointer
    ) -> (picked: [(index: Int, state: SlotState)], lengths: [Int]) {
        let pageSize = live.pageSize
        var picked: [(index: Int, state: SlotState)] = []
        var lengths: [Int] = []
        while next < candidates.count, picked.count < room {
            let index = candidates[next]
            next += 1
            let page = UnsafeMutableRawBufferPointer(rebasing: buffer[(picked.count * pageSize)..<((picked.count + 1) * pageSize)])
            let copied = live.slots.withLock(index) { () -> SlotState? in
                let state = live.slots[index]
                guard state.flags.contains(.postProcessing) else { return nil }
                do {
                    if live.compressedWriteback, !state.flags.contains(.huge) {
                        copyObject(live, state, into: page)
                    } else {
                        try restoreLocked(live, state, into: page)
                    }
                } catch {
                    return nil
                }
                return state
            }
            guard let state = copied else {
                live.stats.writebackSkipped.add(1, ordering: .relaxed)
                continue
            }
            picked.append((index, state))
            lengths.append(live.compressedWriteback && !state.flags.contains(.huge) ? state.size : pageSize)
        }
        return (picked, lengths)
    }

    /// Phase 3 of `writeBack`: frees each copied slot's object and points it at its block,
    /// under its own slot lock; a slot written meanwhile keeps its new content and the block
    /// is freed.
    /// - Returns: slots swapped.
    private func swapIn(
        _ live: LiveDevice, _ backing: BackingStore, _ picked: [(index: Int, state: SlotState)], _ blocks: [Int64]
    ) -> Int {
        var swapped = 0
        for (item, block) in zip(picked, blocks) {
            let done = live.slots.withLock(item.index) { () -> Bool in
                var state = live.slots[item.index]
                guard state.flags.contains(.postProcessing), state.value == item.state.value else { return false }
                live.pool.free(Handle(raw: UInt32(state.value)))
                live.stats.comprDataSize.subtract(state.size, ordering: .relaxed)
                if state.flags.contains(.huge) { live.stats.hugePages.subtract(1, ordering: .relaxed) }
                // With compressed_writeback the block holds the object as stored: compressed
                // bytes, or the raw page of a huge slot, which keeps `huge` (as the kernel keeps
                // ZRAM_HUGE) so that reads know not to decompress it.
                state.value = UInt64(block)
                state.flags = state.flags.intersection(live.compressedWriteback ? [.stored, .huge] : [.stored])
                    .union(.writtenBack)
                if live.compressedWriteback, !state.flags.contains(.huge) { state.flags.insert(.compressedInStore) }
                if !live.compressedWriteback {
                    state.size = live.pageSize
                    state.priority = 0
                }
                live.slots[item.index] = state
                return true
            }
            if done {
                swapped += 1
            } else {
                try? backing.free(block)
                live.stats.writebackSkipped.add(1, ordering: .relaxed)
            }
        }
        return swapped
    }

    /// Reads a written-back slot's page; the caller holds the slot lock.
    func readBacking(_ live: LiveDevice, _ state: SlotState, into page: UnsafeMutableRawBufferPointer) throws(ZramError) {
        guard let backing = live.backing else { throw ZramError(.EIO, "written-back page but no backing store") }
        let compressed = state.flags.contains(.compressedInStore)
        let block = Int64(state.value)
        try withUnsafeTemporaryAllocation(byteCount: compressed ? live.pageSize : 0, alignment: 16) { scratch throws(ZramError) in
            let target = compressed ? scratch : page
            let length: Int
            do throws(BackingError) { length = try backing.read(block: block, into: target) } catch {
                throw ZramError(.EIO, "backing block \(block): \(error.reason)")
            }
            guard length == (compressed ? state.size : page.count) else {
                throw ZramError(.EIO, "backing block \(block) holds \(length) bytes, expected \(compressed ? state.size : page.count)")
            }
            guard compressed else { return }
            guard let streams = live.streams[state.priority] else {
                throw ZramError(.EIO, "no algorithm for priority \(state.priority)")
            }
            do { try streams.decompress(UnsafeRawBufferPointer(rebasing: scratch[..<length]), into: page) } catch {
                throw ZramError(.EIO, "backing block \(block) does not decompress: \(error)")
            }
        }
    }

    /// Frees a written-back slot's block; the caller holds the slot lock.
    func freeBackingBlock(_ live: LiveDevice, _ state: SlotState) {
        // A block the store no longer knows (its file failed) has nothing left to free.
        try? live.backing?.free(Int64(state.value))
    }

    /// Flags the slots among `indexes` that pass `eligible` as picked, largest first (or in
    /// the order given).
    func markPostProcessing(
        _ live: LiveDevice, _ indexes: [Int], largestFirst: Bool = true,
        where eligible: (SlotState) -> Bool
    ) -> [Int] {
        var picked: [(index: Int, size: Int)] = []
        for index in indexes {
            live.slots.withLock(index) {
                var state = live.slots[index]
                guard eligible(state) else { return }
                state.flags.insert(.postProcessing)
                live.slots[index] = state
                picked.append((index, state.size))
            }
        }
        if largestFirst { picked.sort { $0.size > $1.size } }
        return picked.map(\.index)
    }

    /// Clears the post-processing mark of slots that were picked but not processed.
    func clearPostProcessing<C: Collection<Int>>(_ live: LiveDevice, _ indexes: C) {
        for index in indexes {
            live.slots.withLock(index) {
                var state = live.slots[index]
                guard state.flags.contains(.postProcessing) else { return }
                state.flags.remove(.postProcessing)
                live.slots[index] = state
            }
        }
    }
}
