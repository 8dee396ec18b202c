extension ZramDevice {
    /// `mm_stat`, `io_stat`, `bd_stat`, `debug_stat`, byte for byte as zram formats them.
    static let statAttributes: [Attribute] = [
        Attribute(
            "mm_stat",
            shape: .fields(
                [
                    "orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
                    "same_pages", "pages_compacted", "huge_pages", "huge_pages_since",
                ], versioned: false),
            show: { device in
                let s = device.mmStat
                return Format.statLine([
                    s.origDataSize, s.comprDataSize, s.memUsedTotal, s.memLimit, s.memUsedMax,
                    s.samePages, s.pagesCompacted, s.hugePages, s.hugePagesSince,
                ])
            }),
        Attribute(
            "io_stat", shape: .fields(["failed_reads", "failed_writes", "invalid_io", "notify_free"], versioned: false),
            show: { device in
                let s = device.ioStat
                return Format.statLine([s.failedReads, s.failedWrites, s.invalidIO, s.notifyFree])
            }),
        Attribute(
            "bd_stat", shape: .fields(["bd_count", "bd_reads", "bd_writes"], versioned: false),
            show: { device in
                let s = device.bdStat
                return Format.statLine([s.count, s.reads, s.writes])
            }),
        Attribute(
            "debug_stat",
            shape: .fields(
                ["recompress_attempts", "recompressed", "writeback_skipped", "recompress_failed"],
                versioned: true),
            show: { device in
                let s = device.debugStat
                return "version: 1\n" + Format.statLine([s.recompressAttempts, s.recompressed, s.writebackSkipped, s.recompressFailed])
            }),
    ]
}
