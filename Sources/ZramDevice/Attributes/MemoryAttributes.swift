extension ZramDevice {
    /// `mem_limit`, `mem_used_max`.
    static let memoryAttributes: [Attribute] = [
        Attribute(
            "mem_limit",
            show: { device in
                "\(device.memLimit.load(ordering: .relaxed))\n"
            },
            store: { device, body throws(ZramError) in
                // Rounded up to whole pages, as zram keeps the limit in pages.
                let bytes = try AttributeParsing.size(body, "mem_limit")
                let pages = try AttributeParsing.wholePages(bytes, pageSize: device.pageSize, "mem_limit")
                device.memLimit.store(pages * device.pageSize, ordering: .relaxed)
            }),
        Attribute(
            "mem_used_max",
            show: { device in
                "\(device.mmStat.memUsedMax)\n"
            },
            store: { device, body throws(ZramError) in
                guard AttributeParsing.trimmed(body) == "0" else {
                    throw ZramError(.EINVAL, "mem_used_max only accepts 0 (reset the peak to the current use)")
                }
                device.resetMemUsedMax()
            }),
    ]
}
