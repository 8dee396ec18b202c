extension ZramDevice {
    /// `disksize`, `initstate`, `reset`.
    static let sizeAttributes: [Attribute] = [
        Attribute("disksize", show: { device in
            device.stateLock.readLock()
            defer { device.stateLock.unlock() }
            return "\(device.disksize)\n"
        }, store: { device, body throws(ZramError) in
            let bytes = try AttributeParsing.size(body, "disksize")
            guard bytes > 0 else { throw ZramError(.EINVAL, "disksize must be positive") }
            // Rounded up to whole pages, as the kernel's PAGE_ALIGN.
            let pages = bytes / device.pageSize + (bytes % device.pageSize == 0 ? 0 : 1)
            try device.initialise(disksize: pages * device.pageSize)
        }),
        Attribute("initstate", show: { device in device.isInitialised ? "1\n" : "0\n" }),
        Attribute("reset", store: { device, body throws(ZramError) in
            guard try AttributeParsing.unsigned(body, "reset") > 0 else {
                throw ZramError(.EINVAL, "reset takes a positive integer")
            }
            device.reset()
        }),
    ]
}
