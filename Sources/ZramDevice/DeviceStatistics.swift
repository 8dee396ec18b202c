/// zram's `mm_stat` fields, in bytes unless named pages.
public struct MMStat: Sendable, Equatable {
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
public struct IOStat: Sendable, Equatable {
    public var failedReads = 0
    public var failedWrites = 0
    public var invalidIO = 0
    public var notifyFree = 0
}

/// zram's `bd_stat` fields, in 4 KiB units.
public struct BDStat: Sendable, Equatable {
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
public struct DebugStat: Sendable, Equatable {
    package var recompressAttempts = 0
    package var recompressed = 0
    package var writebackSkipped = 0
    package var recompressFailed = 0
}
