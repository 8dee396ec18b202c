import Glibc
import ZComp
import ZSmalloc
import ZramBacking
import ZSync

/// `--persist` (a zramd extension): at shutdown every page in memory is copied into the
/// backing store as stored (compressed, no recompression) with the slot table and the
/// settings, in one transaction that marks the file clean; at `disksize` a clean,
/// compatible file is restored at once — every slot points at its page in the store — and
/// the pages that were in memory are loaded back in the background.
extension ZramDevice {
    static let imageVersion = "1"

    /// Saves the device into its backing store; waits for requests in flight. Call it when
    /// nothing else will use the device (the server has stopped).
    /// - Returns: pages saved and the bytes copied from memory; nil when there is nothing to
    ///   save to (not initialised, or no backing store).
    /// - Throws: EIO / ENOSPC when the store refuses; the file then stays unclean.
    public func saveImage() throws(ZramError) -> (pages: Int, bytes: Int)? {
        // Held for writing: no request runs while the slots are copied.
        try deviceState.write { (device) throws(ZramError) -> (pages: Int, bytes: Int)? in
            guard let live = device.live, let backing = live.backing else { return nil }
            return try save(live, to: backing, config: device.config)
        }
    }

    private func save(_ live: LiveDevice, to backing: BackingStore, config: DeviceConfig) throws(ZramError) -> (pages: Int, bytes: Int) {
        var pages = 0, bytes = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: live.pageSize, alignment: 16)
        defer { scratch.deallocate() }
        do throws(BackingError) {
            try backing.saveImage(meta: imageMeta(live, config)) { image throws(BackingError) in
                for index in 0..<live.slots.count {
                    let state = live.slots[index]
                    guard state.flags.contains(.stored) else { continue }
                    let kept = state.flags.intersection([.stored, .same, .writtenBack, .huge, .incompressible, .compressedInStore])
                    var record = ImageSlot(
                        index: index, block: nil, value: state.value, size: state.size,
                        flags: kept.rawValue, priority: state.priority, resident: false)
                    if state.flags.contains(.writtenBack) {
                        record.block = Int64(state.value)
                    } else if !state.flags.contains(.same) {
                        let handle = Handle(raw: UInt32(state.value))
                        record.block = try live.pool.withObject(handle, length: state.size, scratch: scratch) {
                            object throws(BackingError) in try image.page(object)
                        }
                        var flags = kept.union(.writtenBack)
                        if !state.flags.contains(.huge) { flags.insert(.compressedInStore) }
                        record.flags = flags.rawValue
                        record.resident = true
                        bytes += state.size
                    }
                    try image.slot(record)
                    pages += 1
                }
            }
        } catch {
            throw ZramError(Errno(error), "saving \(name) to \(backing.path): \(error.reason)")
        }
        return (pages, bytes)
    }

    /// What a restore must match or adopt.
    private func imageMeta(_ live: LiveDevice, _ config: DeviceConfig) -> [String: String] {
        var meta = [
            "version": Self.imageVersion, "page_size": String(live.pageSize),
            "disksize": String(live.slots.count * live.pageSize),
            "compressed_writeback": live.compressedWriteback ? "1" : "0",
        ]
        let choices = [config.primary] + (1...3).map { config.secondary[$0] }
        for (priority, choice) in choices.enumerated() {
            guard let choice else { continue }
            meta["algorithm.\(priority)"] = choice.name
            if let level = choice.params.level { meta["level.\(priority)"] = String(level) }
            if let bits = choice.params.deflateWinbits { meta["winbits.\(priority)"] = String(bits) }
            if choice.params.dictionary != nil { meta["dict.\(priority)"] = "1" }
        }
        return meta
    }

    /// Whether an image fits this device: same page size and disksize, known algorithms and
    /// no dictionary (dictionaries are not saved).
    func imageRefusal(_ image: StoreImage, disksize: Int, pageSize: Int) -> ImageRefusal? {
        let meta = image.meta
        guard meta["version"] == Self.imageVersion else { return ImageRefusal("image version \(meta["version"] ?? "none") is not \(Self.imageVersion)") }
        guard meta["page_size"] == String(pageSize) else { return ImageRefusal("page size \(meta["page_size"] ?? "?") is not \(pageSize)") }
        guard meta["disksize"] == String(disksize) else { return ImageRefusal("disksize \(meta["disksize"] ?? "?") is not \(disksize)") }
        guard let primary = meta["algorithm.0"], Codecs.names.contains(primary) else { return ImageRefusal("its primary algorithm is unknown") }
        for priority in 0...3 {
            if meta["dict.\(priority)"] != nil { return ImageRefusal("priority \(priority) used a dictionary, which an image does not keep") }
            if let name = meta["algorithm.\(priority)"], !Codecs.names.contains(name) { return ImageRefusal("algorithm \(name) is unknown") }
        }
        for slot in image.slots {
            let flags = SlotFlags(rawValue: slot.flags)
            guard slot.index >= 0, slot.index < disksize / pageSize, flags.contains(.stored),
                (slot.block != nil) == flags.contains(.writtenBack), slot.block != nil || flags.contains(.same),
                (0...3).contains(slot.priority), slot.size >= 0, slot.size <= pageSize,
                !flags.contains(.compressedInStore) || meta["algorithm.\(slot.priority)"] != nil
            else { return ImageRefusal("slot \(slot.index) is not consistent") }
        }
        return nil
    }

    /// The configuration an accepted image was saved with: its algorithms and parameters.
    func configuration(from image: StoreImage, base: DeviceConfig) -> DeviceConfig {
        var config = base
        func choice(_ priority: Int) -> AlgorithmChoice? {
            guard let name = image.meta["algorithm.\(priority)"] else { return nil }
            return AlgorithmChoice(
                name: name,
                params: CodecParams(
                    level: image.meta["level.\(priority)"].flatMap { Int($0) },
                    deflateWinbits: image.meta["winbits.\(priority)"].flatMap { Int($0) }))
        }
        config.primary = choice(0) ?? base.primary
        config.secondary = [:]
        for priority in 1...3 { config.secondary[priority] = choice(priority) }
        config.compressedWriteback = image.meta["compressed_writeback"] == "1"
        return config
    }

    /// Points every slot of a new device at what the image holds.
    /// - Returns: the slots whose pages were in memory, to load back.
    func restoreSlots(_ live: LiveDevice, _ image: StoreImage) -> [Int] {
        var resident: [Int] = []
        for slot in image.slots {
            let flags = SlotFlags(rawValue: slot.flags)
            live.slots.withLock(slot.index) {
                live.slots[slot.index] = SlotState(
                    value: slot.block.map { UInt64($0) } ?? slot.value, size: slot.size,
                    flags: flags, priority: slot.priority, accessTime: 0)
            }
            live.stats.pagesStored.add(1, ordering: .relaxed)
            if flags.contains(.same) { live.stats.samePages.add(1, ordering: .relaxed) }
            if slot.resident { resident.append(slot.index) }
        }
        return resident
    }

    /// Loads the pages that were in memory at shutdown back from the store, as stored (no
    /// compression), on a background thread at nice 10, until done or `mem_limit` is reached;
    /// a slot written meanwhile keeps its new page.
    func loadInBackground(_ live: LiveDevice, _ resident: [Int]) {
        guard !resident.isEmpty else { return }
        let device = self
        PThread.detach {
            PThread.setNice(10)
            for index in resident {
                // Only while the device is still the one restored (not reset or removed).
                guard let more = device.withLive({ current in current === live ? device.loadResident(live, index) : false }),
                    more
                else { break }
            }
        }
    }

    /// Brings one restored slot's page back into memory; false when memory is full.
    private func loadResident(_ live: LiveDevice, _ index: Int) -> Bool {
        guard let backing = live.backing else { return false }
        return live.slots.withLock(index) { () -> Bool in
            var state = live.slots[index]
            guard state.flags.isSuperset(of: [.stored, .writtenBack]) else { return true }
            let block = Int64(state.value)
            return withUnsafeTemporaryAllocation(byteCount: live.pageSize, alignment: 16) { buffer -> Bool in
                guard let length = try? backing.read(block: block, into: buffer), length == state.size,
                    let handle = try? allocate(live, length: length)
                else { return false }
                live.pool.write(handle, UnsafeRawBufferPointer(rebasing: buffer[..<length]))
                freeBackingBlock(live, state)
                state.value = UInt64(handle.raw)
                state.flags.subtract([.writtenBack, .compressedInStore])
                live.slots[index] = state
                live.stats.comprDataSize.add(length, ordering: .relaxed)
                if state.flags.contains(.huge) {
                    live.stats.hugePages.add(1, ordering: .relaxed)
                }
                return true
            }
        }
    }
}
