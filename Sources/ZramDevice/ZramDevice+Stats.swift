/// zram's `mm_stat` fields, in bytes unless named pages.
public struct MMStat: Sendable, Equatable, Codable {
    public var origDataSize = 0
    public var comprDataSize = 0
    public var memUsedTotal = 0
    public var memLimit = 0
    public var memUsedMax = 0
    public var samePages = 0
    public var pagesCompacted = 0
    public var hugePages = 0
    public var hugePagesSince = 0
}

/// zram's `io_stat` fields.
public struct IOStat: Sendable, Equatable, Codable {
    public var failedReads = 0
    public var failedWrites = 0
    public var invalidIO = 0
    public var notifyFree = 0
}

/// zram's `bd_stat` fields, in 4 KiB units.
public struct BDStat: Sendable, Equatable, Codable {
    public var count = 0
    public var reads = 0
    public var writes = 0
}

/// The tiering extensions' counters (`tier_stat`).
public struct TierStat: Sendable, Equatable {
    public var autoWrittenBack = 0
    public var promoted = 0
    public var writesToBacking = 0
    public var evicted = 0
    public var autoWritebackMilliseconds = 0
}

/// zramd's `debug_stat` counters.
public struct DebugStat: Sendable, Equatable, Codable {
    public var recompressAttempts = 0
    public var recompressed = 0
    public var writebackSkipped = 0
    public var recompressFailed = 0
}

extension ZramDevice {
    /// Memory statistics; all zero before initialisation.
    public var mmStat: MMStat {
        withLive { live in
            MMStat(
                origDataSize: live.stats.pagesStored.load(ordering: .relaxed) * live.pageSize,
                comprDataSize: live.stats.comprDataSize.load(ordering: .relaxed),
                memUsedTotal: live.pool.memoryUsed,
                memLimit: memLimit.load(ordering: .relaxed),
                memUsedMax: live.pool.memoryUsedMax,
                samePages: live.stats.samePages.load(ordering: .relaxed),
                pagesCompacted: live.pool.pagesCompacted,
                hugePages: live.stats.hugePages.load(ordering: .relaxed),
                hugePagesSince: live.stats.hugePagesSince.load(ordering: .relaxed))
        } ?? MMStat(memLimit: memLimit.load(ordering: .relaxed))
    }

    public var ioStat: IOStat {
        withLive { live in
            IOStat(failedReads: live.stats.failedReads.load(ordering: .relaxed),
                   failedWrites: live.stats.failedWrites.load(ordering: .relaxed),
                   invalidIO: live.stats.invalidIO.load(ordering: .relaxed),
                   notifyFree: live.stats.notifyFree.load(ordering: .relaxed))
        } ?? IOStat()
    }

    public var bdStat: BDStat {
        withLive { live in
            guard let stats = live.backing?.stats else { return BDStat() }
            return BDStat(count: Int(stats.bdCount), reads: Int(stats.bdReads), writes: Int(stats.bdWrites))
        } ?? BDStat()
    }

    public var debugStat: DebugStat {
        withLive { live in
            DebugStat(recompressAttempts: live.stats.recompressAttempts.load(ordering: .relaxed),
                      recompressed: live.stats.recompressed.load(ordering: .relaxed),
                      writebackSkipped: live.stats.writebackSkipped.load(ordering: .relaxed),
                      recompressFailed: live.stats.recompressFailed.load(ordering: .relaxed))
        } ?? DebugStat()
    }

    public var tierStat: TierStat {
        withLive { live in
            TierStat(autoWrittenBack: live.stats.autoWrittenBack.load(ordering: .relaxed),
                     promoted: live.stats.promoted.load(ordering: .relaxed),
                     writesToBacking: live.stats.writesToBacking.load(ordering: .relaxed),
                     evicted: live.stats.evicted.load(ordering: .relaxed),
                     autoWritebackMilliseconds: live.stats.autoWritebackNanos.load(ordering: .relaxed) / 1_000_000)
        } ?? TierStat()
    }

    /// The tiering settings as they are now, with the watermarks in bytes of `mem_limit`.
    public var tieringState: (autoWriteback: Bool, highBytes: Int, lowBytes: Int, promote: Bool, evict: Bool) {
        let marks = tiering.watermarks(limit: memLimit.load(ordering: .relaxed))
        return (tiering.autoWriteback.load(ordering: .relaxed), marks?.high ?? 0, marks?.low ?? 0,
                tiering.promote.load(ordering: .relaxed), tiering.evict.load(ordering: .relaxed))
    }

    /// Resets the `mem_used_max` peak to the current use.
    public func resetMemUsedMax() {
        withLive { $0.pool.resetPeak() }
    }

    /// One line per stored slot: index, access time, flags `s w h i r n` (zram's `block_state`).
    public func blockState() throws(ZramError) -> String {
        try requireLive("block_state") { live in
            var out = ""
            for index in 0..<live.slots.count {
                let state = live.slots.withLock(index) { live.slots[index] }
                guard state.flags.contains(.stored) else { continue }
                out += Format.rightAligned(index, 12) + " " + Format.rightAligned(Int(state.accessTime), 12)
                    + ".000000 " + state.flagLetters + "\n"
            }
            return out
        }
    }

    /// The allocator's per-class table.
    public func classesTable() throws(ZramError) -> String {
        try requireLive("classes") { $0.pool.formatClasses() }
    }
}

/// printf-style helpers for sysfs text.
enum Format {
    /// `%<width>d`.
    static func rightAligned(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// Numbers as zram prints its stat files: each `%8llu`, space-separated, newline-terminated.
    static func statLine(_ values: [Int]) -> String {
        values.map { rightAligned($0, 8) }.joined(separator: " ") + "\n"
    }
}

/// What HEAD tells about a slot.
public struct SlotInfo: Sendable, Equatable {
    /// zram's `block_state` letters: `s w h i r n`, `.` where a flag is clear.
    public let flags: String
    /// Bytes the stored object takes (a whole page when huge or written back uncompressed; 0 when same-filled).
    public let compressedSize: Int
    /// 0 for the primary algorithm, 1...3 after recompression.
    public let priority: Int
}

extension SlotState {
    /// `block_state`'s flag letters: same, written back, huge, idle, recompressed, incompressible.
    var flagLetters: String {
        (flags.contains(.same) ? "s" : ".") + (flags.contains(.writtenBack) ? "w" : ".")
            + (flags.contains(.huge) ? "h" : ".") + (flags.contains(.idle) ? "i" : ".")
            + (priority > 0 ? "r" : ".") + (flags.contains(.incompressible) ? "n" : ".")
    }
}

extension ZramDevice {
    /// Slot `index`'s flags, size and priority, without counting as an access; nil when empty.
    /// - Throws: ERANGE outside the disk, EINVAL before initialisation.
    public func slotInfo(_ index: Int) throws(ZramError) -> SlotInfo? {
        try requireLive("slot info") { live throws(ZramError) -> SlotInfo? in try slotInfo(live, index, wait: true)! }
    }

    /// The slot-info path; nil when `wait` is false and the slot is locked.
    func slotInfo(_ live: LiveDevice, _ index: Int, wait: Bool) throws(ZramError) -> SlotInfo?? {
        guard index >= 0, index < live.slots.count else {
            throw ZramError(.ERANGE, "slot \(index) is outside 0..<\(live.slots.count)")
        }
        guard live.slots.lock(index, wait: wait) else { return nil }
        let state = live.slots[index]
        live.slots.unlock(index)
        guard state.flags.contains(.stored) else { return .some(nil) }
        return SlotInfo(flags: state.flagLetters, compressedSize: state.size, priority: state.priority)
    }

    /// What opening the backing store did with an existing file, and its last fault; nil without one.
    public var backingStatus: (openReport: String, lastFault: String?, restoreReport: String?)? {
        withLive { live in live.backing.map { ($0.openReport, $0.lastFaultReason, live.restoreReport) } } ?? nil
    }

    /// Whether `writeback_limit` applies, and the budget left in 4 KiB units.
    public var writebackLimit: (enabled: Bool, remaining: Int) {
        (writebackLimitEnabled.load(ordering: .relaxed), writebackBudget.load(ordering: .relaxed))
    }

    /// The primary algorithm and its parameters.
    ///
    /// Asked on every page PUT: while initialised it comes from the live device, without
    /// copying the whole configuration.
    public var primaryAlgorithm: AlgorithmChoice { withLive { $0.primary } ?? configSnapshot().primary }
}
