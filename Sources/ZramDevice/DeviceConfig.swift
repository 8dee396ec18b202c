import Glibc
import ZComp

/// One algorithm slot: the primary (priority 0) or a recompression algorithm (1...3).
package struct AlgorithmChoice: Sendable, Equatable {
    public var name: String
    public var params: CodecParams
    public init(name: String, params: CodecParams = CodecParams()) {
        self.name = name
        self.params = params
    }
}

/// Everything set before `disksize` initialises the device; frozen while initialised.
public struct DeviceConfig: Sendable {
    public var pageSize: Int
    /// The primary algorithm.
    package var primary = AlgorithmChoice(name: "lz4")
    /// Recompression algorithms by priority 1...3.
    package var secondary: [Int: AlgorithmChoice] = [:]
    /// Parameters set with `algorithm_params algo=NAME` while no priority ran NAME, by name;
    /// a priority that later chooses NAME starts with them. Chosen algorithms keep their
    /// parameters in `primary` and `secondary`, per priority, as the kernel does.
    package var paramsByName: [String: CodecParams] = [:]
    /// The backing store's file name inside the data directory, or nil for none.
    public var backingDev: String?
    public var compressedWriteback = false
    /// The allocator's longest zspage chain.
    public var maxChain = 8
    /// Streams per algorithm.
    public var streams = StreamPool.defaultCount
    /// The most slots `disksize` accepts (ENOMEM above): by default, as many as a slot
    /// table in half of the machine's physical memory holds, as zram's vzalloc of the
    /// table fails when memory cannot hold it.
    package var maxSlots = DeviceConfig.defaultMaxSlots
    /// Told how long each page's compression and decompression took (metrics), when set.
    public var codecObserver: (any CodecObserver)?
    /// The device is also exported as a block device (`--nbd-listen`), which must never
    /// drop a page: `eviction` is refused.
    public var blockExport = false
    /// Save the device into its backing store at shutdown and restore it at `disksize`
    /// (`--persist`, a zramd extension).
    public var persist = false
    /// Maps the allocator's chunk regions instead of `mmap` when set: tests slow it down.
    package var mapRegion: (@Sendable (Int) -> UnsafeMutableRawPointer?)?

    public init(pageSize: Int = 4096, primary: String = "lz4") {
        self.pageSize = pageSize
        self.primary = AlgorithmChoice(name: primary)
    }
}

extension DeviceConfig {
    /// Bytes of slot table per slot (`SlotTable`: a meta word and a value).
    static let slotBytes = 16

    /// Slots whose table fits in half of physical memory.
    package static let defaultMaxSlots: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageBytes = sysconf(Int32(_SC_PAGESIZE))
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageBytes)
        guard pages > 0, pageBytes > 0, !overflow else { return Int.max / slotBytes }
        return bytes / 2 / slotBytes
    }()
}
