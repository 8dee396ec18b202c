extension ZramDevice {
    /// `disksize`, `initstate`, `reset`.
    static let sizeAttributes: [Attribute] = [
        Attribute(
            "disksize",
            show: { device in "\(device.diskSize)\n" },
            store: { device, body throws(ZramError) in
                let bytes = try AttributeParsing.size(body, "disksize")
                guard bytes > 0 else { throw ZramError(.EINVAL, "disksize must be positive") }
                // Rounded up to whole pages, as the kernel's PAGE_ALIGN.
                let pages = try AttributeParsing.wholePages(bytes, pageSize: device.pageSize, "disksize")
                // zram's vzalloc of the slot table fails with ENOMEM when memory cannot hold it;
                // zramd's table is allocated and zeroed at once, so refuse what would not fit.
                let maxSlots = device.configSnapshot().maxSlots
                guard pages <= maxSlots else {
                    throw ZramError(
                        .ENOMEM,
                        "disksize \(bytes) needs \(pages) slots; at most \(maxSlots) fit "
                            + "(a slot table of \(DeviceConfig.slotBytes) bytes per slot in half of the machine's memory)")
                }
                try device.initialise(disksize: pages * device.pageSize)
            }),
        Attribute("initstate", show: { device in device.isInitialised ? "1\n" : "0\n" }),
        Attribute(
            "reset",
            store: { device, body throws(ZramError) in
                guard try AttributeParsing.unsigned(body, "reset") > 0 else {
                    throw ZramError(.EINVAL, "reset takes a positive integer")
                }
                try device.resetNow()
            }),
    ]
}
