extension ZramDevice {
    /// One line per stored slot: index, access time, flags `s w h i r n` (zram's `block_state`).
    public func blockState() throws(ZramError) -> String {
        try requireLive("block_state") { live in
            var out = ""
            for index in 0..<live.slots.count {
                let state = live.slots.withLock(index) { live.slots[index] }
                guard state.flags.contains(.stored) else { continue }
                out +=
                    Format.rightAligned(index, 12) + " " + Format.rightAligned(Int(state.accessTime), 12)
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

    /// The primary algorithm and its parameters: the live device's while initialised (a
    /// restored image brings its own), the configured one before.
    package var primaryAlgorithm: AlgorithmChoice { withLive { $0.primary } ?? configSnapshot().primary }
}
