extension ZramDevice {
    /// `mm_stat`, `io_stat`, `bd_stat`, `debug_stat`, byte for byte as zram formats them.
    static let statAttributes: [Attribute] = [
        Attribute("mm_stat", show: { device in
            let s = device.mmStat
            return Format.statLine([s.origDataSize, s.comprDataSize, s.memUsedTotal, s.memLimit, s.memUsedMax,
                                    s.samePages, s.pagesCompacted, s.hugePages, s.hugePagesSince])
        }),
        Attribute("io_stat", show: { device in
            let s = device.ioStat
            return Format.statLine([s.failedReads, s.failedWrites, s.invalidIO, s.notifyFree])
        }),
        Attribute("bd_stat", show: { device in
            let s = device.bdStat
            return Format.statLine([s.count, s.reads, s.writes])
        }),
        Attribute("debug_stat", show: { device in
            let s = device.debugStat
            return "version: 1\n" + Format.statLine([s.recompressAttempts, s.recompressed, s.writebackSkipped, s.recompressFailed])
        }),
    ]
}
