import ZSync
import Synchronization
import ZComp
import ZSmalloc
import ZramBacking

/// One zram device: configuration before `disksize`, pages and post-processing after.
///
/// Locks: `stateLock` is held for reading by every page operation and attribute that
/// needs the live device, and for writing only by initialisation and `reset` (zram's
/// `init_lock`); readers never exclude each other. Below it, each slot has its own
/// sleepable lock (`SlotTable`), and the allocator and stream pools lock themselves.
/// Nothing that covers more than one slot is held while compressing, decompressing
/// or doing SQLite I/O.
public final class ZramDevice: @unchecked Sendable {
    public let id: Int
    /// Where `backing_dev` and `dict=` files must live.
    public let dataDir: String
    public var name: String { "zram\(id)" }

    let stateLock = PThreadRWLock()
    // Guarded by `stateLock`: written with it held for writing, read with it held either way.
    var live: LiveDevice?
    var config: DeviceConfig
    var disksize = 0
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

    /// Creates an uninitialised device.
    public init(id: Int, dataDir: String, config: DeviceConfig = DeviceConfig(),
                makeCodec: @escaping CodecFactory = { name, params, pageSize throws(CodecError) in
                    try Codecs.make(name, params: params, pageSize: pageSize)
                }) {
        self.id = id
        self.dataDir = dataDir
        self.config = config
        initialConfig = config
        self.makeCodec = makeCodec
    }

    public var pageSize: Int { config.pageSize }

    /// Runs `body` with the live device under the state lock held for reading.
    @inline(__always)
    func withLive<R, E: Error>(_ body: (LiveDevice) throws(E) -> R) throws(E) -> R? {
        stateLock.readLock()
        defer { stateLock.unlock() }
        guard let live else { return nil }
        return try body(live)
    }

    /// Like `withLive`, but an uninitialised device is `error`.
    @inline(__always)
    func requireLive<R>(_ what: String, _ body: (LiveDevice) throws(ZramError) -> R) throws(ZramError) -> R {
        let result: R? = try withLive(body)
        guard let result else { throw ZramError(.EINVAL, "\(name) is not initialised; write disksize before \(what)") }
        return result
    }

    /// Runs `body` with the configuration, refusing once the device is initialised (zram's pre-init attributes).
    func withPreInitConfig<R>(_ attribute: String, _ body: (inout DeviceConfig) throws(ZramError) -> R) throws(ZramError) -> R {
        stateLock.writeLock()
        defer { stateLock.unlock() }
        guard live == nil else { throw ZramError(.EBUSY, "\(attribute) cannot change while \(name) is initialised; reset it first") }
        return try body(&config)
    }

    /// The capacity in bytes (`disksize`), 0 until initialised.
    public var diskSize: Int {
        stateLock.readLock()
        defer { stateLock.unlock() }
        return disksize
    }

    /// True once `disksize` was written and until `reset`.
    public var isInitialised: Bool {
        stateLock.readLock()
        defer { stateLock.unlock() }
        return live != nil
    }

    /// Initialises the device with `bytes` of capacity (zram's `echo N > disksize`).
    public func initialise(disksize bytes: Int) throws(ZramError) {
        stateLock.writeLock()
        defer { stateLock.unlock() }
        guard live == nil else { throw ZramError(.EBUSY, "\(name) is already initialised; reset it first") }
        let slotCount = bytes / config.pageSize
        guard slotCount > 0 else { throw ZramError(.EINVAL, "disksize must be at least one page (\(config.pageSize) bytes)") }
        var backing: BackingStore?
        if let file = config.backingDev {
            do {
                let path = try BackingStore.resolve(name: file, inDataDir: dataDir)
                backing = try BackingStore(path: path, pageSize: config.pageSize)
            } catch {
                throw ZramError(Errno(rawValue: error.errnoName) ?? .EIO, "backing_dev \(file): \(error.reason)")
            }
        }
        live = try LiveDevice(slotCount: slotCount, config: config, backing: backing, makeCodec: makeCodec)
        disksize = slotCount * config.pageSize
    }

    /// Frees every page and the allocator's memory and forgets the statistics, limits,
    /// algorithms and backing device, as zram's `reset` does; disksize goes back to 0.
    /// Waits for operations in flight.
    public func reset() {
        stateLock.writeLock()
        defer { stateLock.unlock() }
        live?.backing?.close()
        live = nil
        disksize = 0
        config = initialConfig
        memLimit.store(0, ordering: .relaxed)
        writebackLimitEnabled.store(false, ordering: .relaxed)
        writebackBudget.store(0, ordering: .relaxed)
        writebackBatchSize.store(32, ordering: .relaxed)
    }
}
