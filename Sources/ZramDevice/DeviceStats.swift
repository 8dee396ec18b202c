import Synchronization

/// zram's counters (`mm_stat`, `io_stat`, `bd_stat`, `debug_stat`), updated lock-free.
final class DeviceStats: Sendable {
    let comprDataSize = Atomic<Int>(0)
    let pagesStored = Atomic<Int>(0)
    let samePages = Atomic<Int>(0)
    let hugePages = Atomic<Int>(0)
    let hugePagesSince = Atomic<Int>(0)
    let failedReads = Atomic<Int>(0)
    let failedWrites = Atomic<Int>(0)
    let invalidIO = Atomic<Int>(0)
    let notifyFree = Atomic<Int>(0)
    let backingReads = Atomic<Int>(0)
    let backingWrites = Atomic<Int>(0)
    // debug_stat: zramd's own.
    let recompressAttempts = Atomic<Int>(0)
    let recompressed = Atomic<Int>(0)
    let writebackSkipped = Atomic<Int>(0)
    /// Recompression attempts a codec failed (the slot kept its object).
    let recompressFailed = Atomic<Int>(0)
    // tier_stat: the tiering extensions.
    /// Pages the automatic writer wrote back.
    let autoWrittenBack = Atomic<Int>(0)
    /// Written-back pages brought back into memory.
    let promoted = Atomic<Int>(0)
    /// Writes at mem_limit that went straight to the backing store.
    let writesToBacking = Atomic<Int>(0)
    /// Pages dropped at mem_limit by eviction.
    let evicted = Atomic<Int>(0)
    /// Time the automatic writer spent, in nanoseconds.
    let autoWritebackNanos = Atomic<Int>(0)

}
