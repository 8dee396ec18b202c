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
            IOStat(
                failedReads: live.stats.failedReads.load(ordering: .relaxed),
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

    package var debugStat: DebugStat {
        withLive { live in
            DebugStat(
                recompressAttempts: live.stats.recompressAttempts.load(ordering: .relaxed),
                recompressed: live.stats.recompressed.load(ordering: .relaxed),
                writebackSkipped: live.stats.writebackSkipped.load(ordering: .relaxed),
                recompressFailed: live.stats.recompressFailed.load(ordering: .relaxed))
        } ?? DebugStat()
    }

    public var tierStat: TierStat {
        withLive { live in
            TierStat(
                autoWrittenBack: live.stats.autoWrittenBack.load(ordering: .relaxed),
                promoted: live.stats.promoted.load(ordering: .relaxed),
                writesToBacking: live.stats.writesToBacking.load(ordering: .relaxed),
                evicted: live.stats.evicted.load(ordering: .relaxed),
                autoWritebackMilliseconds: live.stats.autoWritebackNanos.load(ordering: .relaxed) / 1_000_000)
        } ?? TierStat()
    }

    /// The tiering settings as they are now, with the watermarks in bytes of `mem_limit`.
    public var tieringState: (autoWriteback: Bool, highBytes: Int, lowBytes: Int, promote: Bool, evict: Bool) {
        let marks = tiering.watermarks(limit: memLimit.load(ordering: .relaxed))
        return (
            tiering.autoWriteback.load(ordering: .relaxed), marks?.high ?? 0, marks?.low ?? 0,
            tiering.promote.load(ordering: .relaxed), tiering.evict.load(ordering: .relaxed)
        )
    }

    /// Resets the `mem_used_max` peak to the current use.
    func resetMemUsedMax() {
        withLive { $0.pool.resetPeak() }
    }
}
