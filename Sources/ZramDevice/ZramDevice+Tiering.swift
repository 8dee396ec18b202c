import Dispatch
import Glibc
import Synchronization
import ZSmalloc
import ZramBacking
import ZSync

/// The tiering extensions (zramd's, off by default): automatic writeback between two
/// watermarks of `mem_limit`, writes at the limit that go straight to the backing store
/// (zswap's reject path), promotion of hot written-back pages, and eviction for devices
/// without a backing store (memcached's behaviour).
extension ZramDevice {
    /// Whether a write over `mem_limit` is handled by an extension instead of failing.
    func tieringMakesRoom(_ live: LiveDevice) -> Bool {
        live.backing != nil ? tiering.autoWriteback.load(ordering: .relaxed) : tiering.evict.load(ordering: .relaxed)
    }

    /// A write that did not fit under `mem_limit`: stored in the backing store (automatic
    /// writeback on), or stored after evicting cold pages (eviction on), or refused.
    /// - Throws: ENOMEM (or ENOSPC from a full store) saying why nothing could make room.
    func writeOverLimit(
        _ live: LiveDevice, _ index: Int, page: UnsafeRawBufferPointer, object: UnsafeRawBufferPointer,
        huge: Bool
    ) throws(ZramError) -> Bool {
        let limit = memLimit.load(ordering: .relaxed)
        if let backing = live.backing, tiering.autoWriteback.load(ordering: .relaxed) {
            try storeInBacking(live, backing, index, page: page, object: object, huge: huge)
            return true
        }
        if live.backing == nil, tiering.evict.load(ordering: .relaxed) {
            var idle = 0
            var spared = Set<Int>()
            for round in 0..<8 {
                // A sweep that only took reference bits away evicts on the next one.
                if evictColdest(live, count: 64, spared: &spared) == 0 {
                    idle += 1
                    if idle == 2 { break }
                    continue
                }
                // Freed objects leave holes in zspages; compaction turns them into free memory.
                if round % 2 == 1 { _ = live.pool.compact() }
                if let handle = try allocate(live, length: object.count) {
                    return installObject(live, index, handle, object: object, huge: huge, wait: true)
                }
            }
            live.stats.failedWrites.add(1, ordering: .relaxed)
            throw ZramError(.ENOMEM, "mem_limit (\(limit) bytes) reached and eviction found nothing more to drop")
        }
        live.stats.failedWrites.add(1, ordering: .relaxed)
        throw ZramError(.ENOMEM, "mem_limit (\(limit) bytes) reached")
    }

    /// Writes one page to the backing store and points slot `index` at it: what a write at
    /// `mem_limit` does while automatic writeback is on. `compressed_writeback` and
    /// `writeback_limit` apply as to any writeback.
    private func storeInBacking(
        _ live: LiveDevice, _ backing: BackingStore, _ index: Int, page: UnsafeRawBufferPointer,
        object: UnsafeRawBufferPointer, huge: Bool
    ) throws(ZramError) {
        let limit = memLimit.load(ordering: .relaxed)
        let units = max(1, live.pageSize / 4096)
        let budgeted = writebackLimitEnabled.load(ordering: .relaxed)
        if budgeted {
            guard writebackBudget.subtract(units, ordering: .relaxed).newValue >= 0 else {
                writebackBudget.add(units, ordering: .relaxed)
                live.stats.failedWrites.add(1, ordering: .relaxed)
                throw ZramError(.ENOMEM, "mem_limit (\(limit) bytes) reached and the writeback budget (writeback_limit) is spent")
            }
        }
        let keepsCompressed = live.compressedWriteback
        let bytes = keepsCompressed ? object : page
        let block: Int64
        do {
            block = try backing.writeNew(pages: bytes, lengths: [bytes.count])[0]
        } catch {
            if budgeted { writebackBudget.add(units, ordering: .relaxed) }
            live.stats.failedWrites.add(1, ordering: .relaxed)
            let errno = Errno(error)
            throw ZramError(
                errno == .ENOSPC ? .ENOSPC : .EIO,
                "mem_limit (\(limit) bytes) reached and the backing store refused the page: \(error.reason)")
        }
        live.slots.withLock(index) {
            freeSlotLocked(live, index)
            var flags: SlotFlags = [.stored, .writtenBack]
            if keepsCompressed { flags.insert(huge ? .huge : .compressedInStore) }
            live.slots[index] = SlotState(
                value: UInt64(block), size: keepsCompressed ? object.count : live.pageSize,
                flags: flags, priority: 0, accessTime: live.now)
        }
        live.stats.pagesStored.add(1, ordering: .relaxed)
        live.stats.writesToBacking.add(1, ordering: .relaxed)
    }

    /// Drops up to `count` of the coldest pages (see `coldest`); same-filled pages take no
    /// memory and stay.
    /// - Returns: pages dropped.
    func evictColdest(_ live: LiveDevice, count: Int, spared: inout Set<Int>) -> Int {
        var dropped = 0
        for index in coldest(live, bytes: nil, count: count, excluding: .same, spared: &spared) {
            live.slots.withLock(index) {
                let state = live.slots[index]
                guard state.flags.contains(.stored), state.flags.isDisjoint(with: [.same, .postProcessing, .referenced]) else { return }
                freeSlotLocked(live, index)
                dropped += 1
            }
        }
        live.stats.evicted.add(dropped, ordering: .relaxed)
        return dropped
    }

    /// Brings a written-back page back into memory when it is read a second time within the
    /// promotion window and memory is under the low watermark; the caller holds the slot lock
    /// and has restored `page`. On any failure the page simply stays in the backing store.
    func promoteIfHot(_ live: LiveDevice, _ index: Int, _ state: inout SlotState, page: UnsafeRawBufferPointer) {
        guard tiering.promote.load(ordering: .relaxed), state.flags.contains(.referenced),
            Int(live.now) - Int(state.accessTime) <= tiering.promoteWindow.load(ordering: .relaxed)
        else { return }
        let limit = memLimit.load(ordering: .relaxed)
        if let marks = tiering.watermarks(limit: limit), live.pool.memoryUsed >= marks.low { return }
        withUnsafeTemporaryAllocation(byteCount: live.pageSize, alignment: 16) { dst in
            let compressed: Int?
            do { compressed = try live.streams[0]!.compress(page, into: dst) } catch { return }
            let (object, huge) = storedForm(live, page, compressed: compressed, in: dst)
            guard let handle = try? allocate(live, length: object.count) else { return }
            live.pool.write(handle, object)
            freeBackingBlock(live, state)
            state = SlotState(
                value: UInt64(handle.raw), size: object.count, flags: huge ? [.stored, .huge] : [.stored],
                priority: 0, accessTime: state.accessTime)
            live.stats.comprDataSize.add(object.count, ordering: .relaxed)
            if huge {
                live.stats.hugePages.add(1, ordering: .relaxed)
                live.stats.hugePagesSince.add(1, ordering: .relaxed)
            }
            live.stats.promoted.add(1, ordering: .relaxed)
        }
    }

    /// Wakes the automatic writer when memory is past the high watermark.
    @inline(__always)
    func kickTierWriter(used: Int, limit: Int) {
        guard tiering.autoWriteback.load(ordering: .relaxed),
            let marks = tiering.watermarks(limit: limit), used > marks.high
        else { return }
        tierWriter.kick(self)
    }

    /// One pass of the automatic writer: when memory is past the high watermark, writes back
    /// until it is under the low one — huge and incompressible pages first, then the coldest
    /// by access time, skipping (and un-marking) pages accessed since the last pass — in
    /// `writeback_batch_size` transactions, then compacts.
    /// - Returns: pages written back.
    @discardableResult
    func autoWritebackPass() -> Int {
        // Checked before the pass counts as post-processing, so that an idle tick of the writer
        // never makes a `reset` answer EBUSY.
        guard tiering.autoWriteback.load(ordering: .relaxed),
            let marks = tiering.watermarks(limit: memLimit.load(ordering: .relaxed)),
            withLive({ $0.pool.memoryUsed > marks.high }) == true
        else { return 0 }
        let start = MonotonicClock.nanoseconds()
        let written =
            (try? withMaintenance("automatic writeback") { live throws(ZramError) -> Int in
                guard let backing = live.backing, live.pool.memoryUsed > marks.high else { return 0 }
                postProcessLock.lock()
                defer { postProcessLock.unlock() }
                var total = 0
                var spared = Set<Int>()
                while live.pool.memoryUsed > marks.low {
                    let victims = pickColdest(live, bytes: live.pool.memoryUsed - marks.low, spared: &spared)
                    guard !victims.isEmpty else { break }
                    let written: Int
                    do { written = try writeBack(live, backing, victims) } catch { break }
                    total += written
                    live.stats.autoWrittenBack.add(written, ordering: .relaxed)
                    _ = live.pool.compact()
                    if written == 0 { break }
                }
                return total
            }) ?? 0
        _ = withLive { $0.stats.autoWritebackNanos.add(Int(MonotonicClock.nanoseconds() - start), ordering: .relaxed) }
        return written
    }

    /// Marks and returns writeback victims whose objects add up to at least `bytes`.
    private func pickColdest(_ live: LiveDevice, bytes: Int, spared: inout Set<Int>) -> [Int] {
        markPostProcessing(
            live, coldest(live, bytes: bytes, count: nil, excluding: [.same, .writtenBack], spared: &spared),
            largestFirst: false
        ) { state in
            state.flags.contains(.stored) && state.flags.isDisjoint(with: [.same, .writtenBack, .referenced])
        }
    }

    /// The coldest stored slots, in the order to give them up: huge and incompressible first,
    /// then by access time, oldest first, until their objects add up to `bytes` or there are
    /// `count` of them. A slot read since the last pass is skipped and loses its reference
    /// bit instead (CLOCK's second chance), and is remembered in `spared` so that the rest of
    /// the same pass leaves it alone too. Busy slots are skipped.
    private func coldest(_ live: LiveDevice, bytes: Int?, count: Int?, excluding: SlotFlags, spared: inout Set<Int>) -> [Int] {
        var first: [(index: Int, size: Int)] = []
        var cold: [(index: Int, time: UInt32, size: Int)] = []
        let skip = excluding.union(.postProcessing)
        for index in 0..<live.slots.count {
            guard live.slots.tryLock(index) else { continue }
            var state = live.slots[index]
            if state.flags.contains(.stored), state.flags.isDisjoint(with: skip), !spared.contains(index) {
                if state.flags.contains(.referenced) {
                    state.flags.remove(.referenced)
                    live.slots[index] = state
                    spared.insert(index)
                } else if !state.flags.isDisjoint(with: [.huge, .incompressible]) {
                    first.append((index, state.size))
                } else {
                    cold.append((index, state.accessTime, state.size))
                }
            }
            live.slots.unlock(index)
        }
        cold.sort { $0.time < $1.time }
        var chosen: [Int] = []
        var sum = 0
        for (index, size) in first.map({ ($0.index, $0.size) }) + cold.map({ ($0.index, $0.size) }) {
            if let bytes, sum >= bytes { break }
            if let count, chosen.count >= count { break }
            chosen.append(index)
            sum += size
        }
        return chosen
    }
}

/// The thread that runs automatic writeback passes for one device (zswap's shrink worker):
/// started the first time the device's `auto_writeback` is switched on, woken when memory
/// passes the high watermark and at least once a second, at nice 10 like the other
/// post-processing. It ends once automatic writeback is off (`reset` and `hot_remove` turn it
/// off) and starts again at the next kick.
///
/// The thread holds the device strongly while it runs, not through a `weak` reference: a weak
/// reference gives the object a side table, and then every retain and release of the device on
/// the request path takes the runtime's slow path.
final class TierWriter: @unchecked Sendable {
    private let wake = DispatchSemaphore(value: 0)
    private let running = Atomic<Bool>(false)

    /// Starts `device`'s writer thread if it is not running, and wakes it.
    func kick(_ device: ZramDevice) {
        if !running.load(ordering: .relaxed), running.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            start(device)
        }
        wake.signal()
    }

    private func start(_ device: ZramDevice) {
        PThread.detach { [self] in
            PThread.setNice(10)
            while true {
                if device.tiering.autoWriteback.load(ordering: .relaxed) {
                    device.autoWritebackPass()
                } else {
                    running.store(false, ordering: .sequentiallyConsistent)
                    // A kick that still saw `running` set started nothing: look once more.
                    guard device.tiering.autoWriteback.load(ordering: .sequentiallyConsistent),
                        running.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
                    else { return }
                }
                _ = wake.wait(timeout: .now() + .seconds(1))
            }
        }
    }
}
