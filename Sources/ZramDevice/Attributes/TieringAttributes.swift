extension ZramDevice {
    /// `auto_writeback`, `promotion`, `eviction`, `tier_stat`: zramd extensions, off by
    /// default, changeable at any time like `mem_limit`.
    static let tieringAttributes: [Attribute] = [
        Attribute(
            "auto_writeback", shape: .settings, isExtension: true,
            show: { device in
                let t = device.tiering
                return "enable=\(t.autoWriteback.load(ordering: .relaxed) ? 1 : 0) "
                    + "high_watermark=\(t.highWatermark.load(ordering: .relaxed)) low_watermark=\(t.lowWatermark.load(ordering: .relaxed))\n"
            },
            store: { device, body throws(ZramError) in
                let pairs = try settingPairs(body, allowed: ["enable", "high_watermark", "low_watermark"], "auto_writeback")
                let t = device.tiering
                var enable = t.autoWriteback.load(ordering: .relaxed)
                var high = t.highWatermark.load(ordering: .relaxed), low = t.lowWatermark.load(ordering: .relaxed)
                for (key, value) in pairs {
                    switch key {
                    case "enable": enable = try AttributeParsing.boolean(value, "enable")
                    case "high_watermark": high = try AttributeParsing.unsigned(value, "high_watermark")
                    default: low = try AttributeParsing.unsigned(value, "low_watermark")
                    }
                }
                guard (1...100).contains(high), (1...100).contains(low), low < high else {
                    throw ZramError(.EINVAL, "watermarks are percentages of mem_limit with 1 <= low_watermark < high_watermark <= 100, not \(low) and \(high)")
                }
                t.highWatermark.store(high, ordering: .relaxed)
                t.lowWatermark.store(low, ordering: .relaxed)
                t.autoWriteback.store(enable, ordering: .relaxed)
                if enable { device.tierWriter.kick(device) }
            }),
        Attribute(
            "promotion", shape: .settings, isExtension: true,
            show: { device in
                let t = device.tiering
                return "enable=\(t.promote.load(ordering: .relaxed) ? 1 : 0) window=\(t.promoteWindow.load(ordering: .relaxed))\n"
            },
            store: { device, body throws(ZramError) in
                let pairs = try settingPairs(body, allowed: ["enable", "window"], "promotion")
                let t = device.tiering
                var enable = t.promote.load(ordering: .relaxed), window = t.promoteWindow.load(ordering: .relaxed)
                for (key, value) in pairs {
                    if key == "enable" {
                        enable = try AttributeParsing.boolean(value, "enable")
                    } else {
                        window = try AttributeParsing.unsigned(value, "window")
                    }
                }
                guard window > 0 else { throw ZramError(.EINVAL, "the promotion window is at least 1 second") }
                t.promoteWindow.store(window, ordering: .relaxed)
                t.promote.store(enable, ordering: .relaxed)
            }),
        Attribute(
            "eviction", shape: .settings, isExtension: true,
            show: { device in
                "enable=\(device.tiering.evict.load(ordering: .relaxed) ? 1 : 0)\n"
            },
            store: { device, body throws(ZramError) in
                let pairs = try settingPairs(body, allowed: ["enable"], "eviction")
                guard let value = pairs.first?.value else { return }
                let enable = try AttributeParsing.boolean(value, "enable")
                if enable {
                    // A block device must never lose data; a page cache with a backing store tiers instead.
                    guard !device.exportedAsBlockDevice.load(ordering: .relaxed) else {
                        throw ZramError(.EINVAL, "\(device.name) is exported as a block device, which must never drop pages")
                    }
                    guard device.configSnapshot().backingDev == nil else {
                        throw ZramError(.EINVAL, "\(device.name) has a backing_dev: use auto_writeback, eviction is for devices without one")
                    }
                }
                device.tiering.evict.store(enable, ordering: .relaxed)
            }),
        Attribute(
            "tier_stat",
            shape: .fields(
                ["auto_written_back", "promoted", "writes_to_backing", "evicted", "auto_writeback_ms"],
                versioned: false), isExtension: true,
            show: { device in
                let s = device.tierStat
                return Format.statLine([s.autoWrittenBack, s.promoted, s.writesToBacking, s.evicted, s.autoWritebackMilliseconds])
            }),
    ]

    /// `key=value` settings; a bare boolean is `enable=` (`echo 1 > auto_writeback`).
    private static func settingPairs(_ body: String, allowed: Set<String>, _ what: String) throws(ZramError) -> [(key: String, value: String)] {
        let text = AttributeParsing.trimmed(body)
        if !text.isEmpty, !text.contains("=") { return [("enable", text)] }
        let pairs = try AttributeParsing.pairs(text, allowed: allowed, what)
        guard !pairs.isEmpty else { throw ZramError(.EINVAL, "\(what) needs one of \(allowed.sorted().joined(separator: ", "))") }
        return pairs
    }
}
