import Glibc
import ZSync
import Synchronization
import ZComp
import ZSmalloc
import ZramBacking

/// One zram device: configuration before `disksize`, pages and post-processing after.
///
/// Locks: `deviceState` is held for reading by every page operation and attribute that
/// needs the live device or the configuration. It is held for writing only for moments:
/// to change the pre-init configuration, to publish a device built outside it (`disksize`)
/// and to take it away again (`reset`, `hot_remove`), whose teardown also runs outside it.
/// A writer never waits behind post-processing (EBUSY at once) nor more than
/// `writeLockPatience` behind I/O in flight (EBUSY), so no worker thread is held by one
/// device's long work. Below it, each slot has its own sleepable lock (`SlotTable`), and
/// the allocator and stream pools lock themselves. Nothing that covers more than one slot
/// is held while compressing, decompressing or doing SQLite I/O.
public final class ZramDevice: @unchecked Sendable {
    public let id: Int
    /// Where `backing_dev` and `dict=` files must live.
    public let dataDir: String
    public var name: String { "zram\(id)" }

    /// The live device and the configuration, behind the device's reader/writer lock.
    let deviceState: RWLocked<DeviceState>
    /// Post-processing runs (writeback, recompress, compact, idle) in progress.
    let maintenanceRunning = Atomic<Int>(0)
    /// What `reset` restores: the configuration the device was created with.
    let initialConfig: DeviceConfig

    let makeCodec: CodecFactory
    // Runtime settings (zram lets them change while initialised).
    let memLimit = Atomic<Int>(0)
    let writebackLimitEnabled = Atomic<Bool>(false)
    /// Remaining writeback budget in 4 KiB units.
    let writebackBudget = Atomic<Int>(0)
    let writebackBatchSize = Atomic<Int>(32)
    /// Serialises post-processing runs (writeback, recompress) as zram does.
    let postProcessLock = PThreadMutex()
    /// The tiering extensions' settings and their background writer.
    let tiering = TieringSettings()
    let tierWriter = TierWriter()
    /// Set by a front end that exports the device as a block device (NBD): such a device
    /// refuses eviction, since a block device must never lose data.
    package let exportedAsBlockDevice = Atomic<Bool>(false)

    /// Creates an uninitialised device.
    public init(
        id: Int, dataDir: String, config: DeviceConfig = DeviceConfig(),
        makeCodec: @escaping CodecFactory = { name, params, pageSize throws(CodecError) in
            try Codecs.make(name, params: params, pageSize: pageSize)
        }
    ) {
        self.id = id
        self.dataDir = dataDir
        deviceState = RWLocked(DeviceState(config: config))
        initialConfig = config
        self.makeCodec = makeCodec
        exportedAsBlockDevice.store(config.blockExport, ordering: .relaxed)
    }

    /// The page size, which no attribute changes (`reset` keeps it).
    public var pageSize: Int { initialConfig.pageSize }

    /// Runs `body` with the live device under the state lock held for reading.
    @inline(__always)
    func withLive<R, E: Error>(_ body: (LiveDevice) throws(E) -> R) throws(E) -> R? {
        try deviceState.read { (state) throws(E) -> R? in
            guard let live = state.live else { return nil }
            return try body(live)
        }
    }

    /// Like `withLive`, but an uninitialised device is EINVAL and a removed one ENODEV.
    @inline(__always)
    func requireLive<R>(_ what: String, _ body: (LiveDevice) throws(ZramError) -> R) throws(ZramError) -> R {
        try deviceState.read { (state) throws(ZramError) -> R in try body(state.requireLive(name, what)) }
    }

    /// How long a state-lock writer waits for I/O in flight before it answers EBUSY.
    static let writeLockPatience = 0.25  // seconds

    /// Runs `body` with the state lock held for writing, taken without waiting behind
    /// post-processing or for long behind anything else: a worker thread must not sleep
    /// through another request's long work.
    /// - Throws: EBUSY when post-processing runs or I/O keeps the lock busy.
    func withStateWriteLock<R>(_ what: String, _ body: (inout DeviceState) throws(ZramError) -> R) throws(ZramError) -> R {
        guard maintenanceRunning.load(ordering: .sequentiallyConsistent) == 0 else {
            throw ZramError(.EBUSY, "\(what): \(name) is running post-processing; try again when it finishes")
        }
        guard let result = try deviceState.write(waitingAtMost: Self.writeLockPatience, body) else {
            throw ZramError(.EBUSY, "\(what): \(name) is busy; try again")
        }
        return result
    }

    /// Runs post-processing on the live device; counted so that writers refuse at once.
    func withMaintenance<R>(_ what: String, _ body: (LiveDevice) throws(ZramError) -> R) throws(ZramError) -> R {
        maintenanceRunning.add(1, ordering: .sequentiallyConsistent)
        defer { maintenanceRunning.subtract(1, ordering: .sequentiallyConsistent) }
        return try requireLive(what, body)
    }

    /// Runs `body` with the configuration, refusing once the device is initialised (zram's pre-init attributes).
    func withPreInitConfig<R>(_ attribute: String, _ body: (inout DeviceConfig) throws(ZramError) -> R) throws(ZramError) -> R {
        // An initialised device refuses at once, whatever holds the lock for reading.
        try deviceState.read { (state) throws(ZramError) in try state.requireUninitialised(name, attribute) }
        return try withStateWriteLock(attribute) { (state) throws(ZramError) -> R in
            try state.requireUninitialised(name, attribute)
            return try body(&state.config)
        }
    }

    /// The capacity in bytes (`disksize`), 0 until initialised.
    public var diskSize: Int { deviceState.read { $0.disksize } }

    /// True once `disksize` was written and until `reset`.
    package var isInitialised: Bool { deviceState.read { $0.live != nil } }

    /// The configuration as it is now.
    func configSnapshot() -> DeviceConfig { deviceState.read { $0.config } }

    /// Initialises the device with `bytes` of capacity (zram's `echo N > disksize`).
    ///
    /// The slot table, allocator, streams and backing store are built with no lock held
    /// (a large slot table takes a while to zero), then published in a moment.
    package func initialise(disksize bytes: Int) throws(ZramError) {
        let config = try withStateWriteLock("disksize") { (state) throws(ZramError) -> DeviceConfig in
            try state.requireUninitialised(name, "disksize")
            state.initialising = true
            return state.config
        }
        let built: LiveDevice
        var resident: [Int] = []
        do throws(ZramError) {
            let slotCount = bytes / config.pageSize
            guard slotCount > 0 else { throw ZramError(.EINVAL, "disksize must be at least one page (\(config.pageSize) bytes)") }
            var backing: BackingStore?
            var restored: StoreImage?
            var used = config
            if let file = config.backingDev {
                let start = MonotonicClock.nanoseconds()
                do {
                    let path = try BackingStore.resolve(name: file, inDataDir: dataDir)
                    let size = slotCount * config.pageSize, pageSize = config.pageSize
                    let accept: ((StoreImage) -> ImageRefusal?)? =
                        config.persist
                        ? { [self] image in imageRefusal(image, disksize: size, pageSize: pageSize) } : nil
                    backing = try BackingStore(path: path, pageSize: config.pageSize, restoring: accept)
                } catch {
                    throw ZramError(Errno(error), "backing_dev \(file): \(error.reason)")
                }
                restored = backing?.restoredImage
                if let restored { used = configuration(from: restored, base: config) }
                built = try LiveDevice(slotCount: slotCount, config: used, backing: backing, makeCodec: makeCodec)
                if let restored {
                    resident = restoreSlots(built, restored)
                    let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
                    let bytes = restored.slots.reduce(0) { $0 + ($1.resident ? $1.size : 0) }
                    let report =
                        "restored \(restored.slots.count) page(s) in \(Int(seconds * 1000)) ms; \(resident.count) of them "
                        + "(\(bytes) bytes) were in memory and load back in the background"
                    built.restoreReport = report
                }
            } else {
                built = try LiveDevice(slotCount: slotCount, config: config, backing: nil, makeCodec: makeCodec)
            }
        } catch {
            _ = finishInitialising(nil)
            throw error
        }
        guard finishInitialising(built) else {
            built.backing?.close()
            throw ZramError.noDevice(name)
        }
        loadInBackground(built, resident)
    }

    /// Publishes what `initialise` built (or nothing, when it failed) and ends initialisation.
    private func finishInitialising(_ built: LiveDevice?) -> Bool {
        // No other writer gets in while `initialising` is set, and readers hold the lock
        // only briefly: waiting here is short and must not fail.
        deviceState.write { state in
            state.initialising = false
            guard let built, !state.removed else { return false }
            state.live = built
            // A restored image brings its own algorithms.
            state.config.primary = built.primary
            state.config.compressedWriteback = built.compressedWriteback
            for priority in 1...3 { state.config.secondary[priority] = built.secondary[priority] }
            state.disksize = built.slots.count * built.pageSize
            return true
        }
    }

    /// Frees every page and the allocator's memory and forgets the statistics, limits,
    /// algorithms and backing device, as zram's `reset` does; disksize goes back to 0.
    /// Waits for operations in flight (the `reset` attribute uses `resetNow`).
    public func reset() {
        let old = deviceState.write { takeLive(&$0) }
        old?.backing?.close()
    }

    /// `reset` for the attribute: EBUSY instead of waiting behind post-processing or I/O.
    func resetNow() throws(ZramError) {
        let old = try withStateWriteLock("reset") { (state) throws(ZramError) -> LiveDevice? in
            guard !state.removed else { throw ZramError.noDevice(name) }
            guard !state.initialising else { throw ZramError(.EBUSY, "reset: \(name) is being initialised") }
            return takeLive(&state)
        }
        // The pages, the allocator's memory and the store go with no lock held.
        old?.backing?.close()
    }

    /// Removes the device for `hot_remove`: every later request fails with ENODEV.
    /// - Throws: EBUSY as `resetNow`; ENODEV when it is already removed.
    func remove() throws(ZramError) {
        let old = try withStateWriteLock("hot_remove") { (state) throws(ZramError) -> LiveDevice? in
            guard !state.removed else { throw ZramError.noDevice(name) }
            guard !state.initialising else { throw ZramError(.EBUSY, "hot_remove: \(name) is being initialised") }
            state.removed = true
            return takeLive(&state)
        }
        old?.backing?.close()
    }

    /// Forgets the live device and the settings, in `state` the caller holds for writing.
    private func takeLive(_ state: inout DeviceState) -> LiveDevice? {
        let old = state.live
        state.live = nil
        state.disksize = 0
        state.config = initialConfig
        memLimit.store(0, ordering: .relaxed)
        writebackLimitEnabled.store(false, ordering: .relaxed)
        writebackBudget.store(0, ordering: .relaxed)
        writebackBatchSize.store(32, ordering: .relaxed)
        tiering.reset()
        return old
    }
}
