import Synchronization

/// Per-slot flags, as zram keeps them beside the object size.
public struct SlotFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The page is one machine word repeated; `value` holds the word.
    public static let same = SlotFlags(rawValue: 1 << 17)
    /// Written back: `value` holds the backing block.
    public static let writtenBack = SlotFlags(rawValue: 1 << 18)
    /// Stored uncompressed: no codec made it smaller than the huge threshold.
    public static let huge = SlotFlags(rawValue: 1 << 19)
    public static let idle = SlotFlags(rawValue: 1 << 20)
    /// No recompression algorithm shrank it.
    public static let incompressible = SlotFlags(rawValue: 1 << 21)
    /// Picked by post-processing (writeback, recompress); any access clears it.
    package static let postProcessing = SlotFlags(rawValue: 1 << 22)
    /// The slot holds a page (object, same word or backing block).
    public static let stored = SlotFlags(rawValue: 1 << 26)
    /// Accessed since the last pass of automatic writeback or eviction (CLOCK's reference
    /// bit): such a page gets a second chance.
    public static let referenced = SlotFlags(rawValue: 1 << 27)

    /// Written back as the compressed object (with the slot's priority's algorithm), not as
    /// the page: `compressed_writeback`, or a page saved by `--persist`.
    public static let compressedInStore = SlotFlags(rawValue: 1 << 28)

    static let all: SlotFlags = [
        .same, .writtenBack, .huge, .idle, .incompressible, .postProcessing, .stored, .referenced,
        .compressedInStore,
    ]
}

/// What a slot holds, read or written under its lock.
struct SlotState: Equatable {
    /// Allocator handle, same-fill word or backing block, by flags.
    var value: UInt64
    /// Bytes the stored object takes (compressed size; the page size when huge).
    var size: Int
    var flags: SlotFlags
    /// 0 for the primary algorithm, 1...3 for a recompression priority.
    var priority: Int
    /// Last access, in seconds on the device's clock.
    var accessTime: UInt32

    static let empty = SlotState(value: 0, size: 0, flags: [], priority: 0, accessTime: 0)
}

/// The slot table: 16 bytes per slot, one lock bit per slot.
///
/// `meta` packs size (bits 0–16), flags (17–22, 26–28), the lock bit (23), the priority
/// (24–25) and the access time in seconds (32–63); `value` is the handle, word or
/// block. Only the lock holder reads or writes a slot's state; the lock bit's
/// acquire/release orders those accesses. A lock may be kept while its holder sleeps.
final class SlotTable: @unchecked Sendable {
    let count: Int
    private let meta: UnsafeMutablePointer<Atomic<UInt64>>
    private let values: UnsafeMutablePointer<UInt64>
    private let queues = SlotWaitQueues()

    private static let lockBit: UInt64 = 1 << 23
    private static let sizeMask: UInt64 = (1 << 17) - 1

    init(count: Int) {
        self.count = count
        meta = .allocate(capacity: count)
        for i in 0..<count { (meta + i).initialize(to: Atomic(0)) }
        values = .allocate(capacity: count)
        values.initialize(repeating: 0, count: count)
    }

    deinit {
        meta.deinitialize(count: count)
        meta.deallocate()
        values.deallocate()
    }

    /// Takes slot `index`'s lock, sleeping while another thread holds it.
    @inline(__always) func lock(_ index: Int) {
        while true {
            let seen = meta[index].load(ordering: .relaxed)
            if seen & Self.lockBit == 0,
                meta[index].compareExchange(expected: seen, desired: seen | Self.lockBit, ordering: .acquiring).exchanged
            {
                return
            }
            queues.wait(slot: index) { meta[index].load(ordering: .sequentiallyConsistent) & Self.lockBit == 0 }
        }
    }

    /// Takes the lock only if it is free.
    @inline(__always) func tryLock(_ index: Int) -> Bool {
        let seen = meta[index].load(ordering: .relaxed)
        return seen & Self.lockBit == 0
            && meta[index].compareExchange(expected: seen, desired: seen | Self.lockBit, ordering: .acquiring).exchanged
    }

    /// Takes the lock, sleeping for it when `wait`; without `wait`, only if it is free.
    @inline(__always) func lock(_ index: Int, wait: Bool) -> Bool {
        if wait {
            lock(index)
            return true
        }
        return tryLock(index)
    }

    /// Releases slot `index`'s lock and wakes its sleepers.
    @inline(__always) func unlock(_ index: Int) {
        meta[index].bitwiseAnd(~Self.lockBit, ordering: .sequentiallyConsistent)
        queues.wake(slot: index)
    }

    /// Runs `body` with the slot locked.
    @inline(__always) func withLock<R, E: Error>(_ index: Int, _ body: () throws(E) -> R) throws(E) -> R {
        lock(index)
        defer { unlock(index) }
        return try body()
    }

    /// The slot's flags read without its lock: a hint that may be stale at once.
    @inline(__always) func peekFlags(_ index: Int) -> SlotFlags {
        SlotFlags(rawValue: meta[index].load(ordering: .relaxed) & SlotFlags.all.rawValue)
    }

    /// The slot's state; the caller holds its lock.
    @inline(__always) subscript(index: Int) -> SlotState {
        get {
            let m = meta[index].load(ordering: .relaxed)
            return SlotState(
                value: values[index], size: Int(m & Self.sizeMask),
                flags: SlotFlags(rawValue: m & SlotFlags.all.rawValue),
                priority: Int((m >> 24) & 3), accessTime: UInt32(truncatingIfNeeded: m >> 32))
        }
        set {
            values[index] = newValue.value
            let m =
                UInt64(newValue.size) & Self.sizeMask | newValue.flags.rawValue
                | UInt64(newValue.priority & 3) << 24 | UInt64(newValue.accessTime) << 32 | Self.lockBit
            meta[index].store(m, ordering: .relaxed)
        }
    }
}
