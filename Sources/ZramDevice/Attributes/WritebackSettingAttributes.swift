import ZramBacking

extension ZramDevice {
    /// `backing_dev`, `compressed_writeback`, `writeback_limit`, `writeback_limit_enable`, `writeback_batch_size`.
    static let writebackSettingAttributes: [Attribute] = [
        Attribute(
            "backing_dev", beforeInit: true, shape: .nameOrNone,
            show: { device in
                (device.configSnapshot().backingDev ?? "none") + "\n"
            },
            store: { device, body throws(ZramError) in
                let name = AttributeParsing.trimmed(body)
                guard !name.isEmpty else { throw ZramError(.EINVAL, "backing_dev needs a file name inside the data directory") }
                let checked: String?
                if name == "none" {
                    checked = nil
                } else {
                    do throws(BackingError) { _ = try BackingStore.resolve(name: name, inDataDir: device.dataDir) } catch {
                        throw ZramError(.EINVAL, "backing_dev \(name): \(error.reason)")
                    }
                    checked = name
                }
                try device.withPreInitConfig("backing_dev") { $0.backingDev = checked }
            }),
        Attribute(
            "compressed_writeback", beforeInit: true,
            show: { device in
                device.configSnapshot().compressedWriteback ? "1\n" : "0\n"
            },
            store: { device, body throws(ZramError) in
                let on = try AttributeParsing.boolean(body, "compressed_writeback")
                try device.withPreInitConfig("compressed_writeback") { $0.compressedWriteback = on }
            }),
        Attribute(
            "writeback_limit",
            show: { device in
                "\(device.writebackBudget.load(ordering: .relaxed))\n"
            },
            store: { device, body throws(ZramError) in
                device.writebackBudget.store(try AttributeParsing.unsigned(body, "writeback_limit"), ordering: .relaxed)
            }),
        Attribute(
            "writeback_limit_enable",
            show: { device in
                device.writebackLimitEnabled.load(ordering: .relaxed) ? "1\n" : "0\n"
            },
            store: { device, body throws(ZramError) in
                device.writebackLimitEnabled.store(try AttributeParsing.boolean(body, "writeback_limit_enable"), ordering: .relaxed)
            }),
        Attribute(
            "writeback_batch_size",
            show: { device in
                "\(device.writebackBatchSize.load(ordering: .relaxed))\n"
            },
            store: { device, body throws(ZramError) in
                let size = try AttributeParsing.unsigned(body, "writeback_batch_size")
                guard (1...4096).contains(size) else { throw ZramError(.EINVAL, "writeback_batch_size must be 1...4096, not \(size)") }
                device.writebackBatchSize.store(size, ordering: .relaxed)
            }),
    ]
}
