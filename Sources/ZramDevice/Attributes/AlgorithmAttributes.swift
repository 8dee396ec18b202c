import Glibc
import ZComp
import ZramBacking

extension ZramDevice {
    /// `comp_algorithm`, `algorithm_params`, `recomp_algorithm`.
    static let algorithmAttributes: [Attribute] = [
        Attribute(
            "comp_algorithm", beforeInit: true, shape: .selection,
            show: { device in
                algorithmList(selected: device.configSnapshot().primary.name)
            },
            store: { device, body throws(ZramError) in
                let name = try algorithmName(body)
                try device.withPreInitConfig("comp_algorithm") { config throws(ZramError) in
                    config.primary = AlgorithmChoice(name: name, params: config.paramsByName[name] ?? CodecParams())
                }
            }),
        Attribute(
            "algorithm_params", beforeInit: true,
            store: { device, body throws(ZramError) in
                try device.setAlgorithmParams(body)
            }),
        Attribute(
            "recomp_algorithm", beforeInit: true, shape: .perPriority,
            show: { device in
                let config = device.configSnapshot()
                return (1...3).compactMap { priority in
                    config.secondary[priority].map { "#\(priority): " + algorithmList(selected: $0.name) }
                }.joined()
            },
            store: { device, body throws(ZramError) in
                let pairs = try AttributeParsing.pairs(body, allowed: ["algo", "priority"], "recomp_algorithm")
                guard let algo = pairs.first(where: { $0.key == "algo" })?.value else {
                    throw ZramError(.EINVAL, "recomp_algorithm needs algo=NAME")
                }
                let name = try algorithmName(algo)
                let priority =
                    try pairs.first(where: { $0.key == "priority" }).map { pair throws(ZramError) in
                        try AttributeParsing.unsigned(pair.value, "priority")
                    } ?? 1
                guard (1...3).contains(priority) else { throw ZramError(.EINVAL, "priority must be 1, 2 or 3, not \(priority)") }
                try device.withPreInitConfig("recomp_algorithm") { config throws(ZramError) in
                    config.secondary[priority] = AlgorithmChoice(name: name, params: config.paramsByName[name] ?? CodecParams())
                }
            }),
    ]

    /// Every algorithm, the selected one in brackets: `lzo [lz4] lz4hc zstd deflate`.
    static func algorithmList(selected: String) -> String {
        Codecs.names.map { $0 == selected ? "[\($0)]" : $0 }.joined(separator: " ") + "\n"
    }

    /// A known algorithm name from an attribute body.
    static func algorithmName(_ body: String) throws(ZramError) -> String {
        let name = AttributeParsing.trimmed(body)
        guard name.utf8.count < 128 else { throw ZramError(.E2BIG, "algorithm name is \(name.utf8.count) bytes (at most 127)") }
        guard Codecs.names.contains(name) else {
            throw ZramError(.EINVAL, "unknown algorithm \"\(name)\" (known: \(Codecs.names.joined(separator: " ")))")
        }
        return name
    }

    /// `algorithm_params`: `algo=NAME` or `priority=N`, with `level=`, `dict=`, `deflate.winbits=`.
    func setAlgorithmParams(_ body: String) throws(ZramError) {
        let pairs = try AttributeParsing.pairs(
            body, allowed: ["algo", "priority", "level", "dict", "deflate.winbits"], "algorithm_params")
        func value(_ key: String) -> String? { pairs.first { $0.key == key }?.value }
        guard value("algo") == nil || value("priority") == nil else {
            throw ZramError(.EINVAL, "algorithm_params takes algo= or priority=, not both")
        }
        var params = CodecParams()
        if let level = value("level") {
            params.level = try AttributeParsing.signed(level, "level")
        }
        if let bits = value("deflate.winbits") {
            params.deflateWinbits = try AttributeParsing.signed(bits, "deflate.winbits")
        }
        if let dict = value("dict") {
            params.dictionary = try readDictionary(dict)
        }
        let algo = try value("algo").map { name throws(ZramError) in try Self.algorithmName(name) }
        let priority = try value("priority").map { p throws(ZramError) in try AttributeParsing.unsigned(p, "priority") }
        if let priority, priority > 3 { throw ZramError(.EINVAL, "priority must be 0...3, not \(priority)") }
        try withPreInitConfig("algorithm_params") { config throws(ZramError) in
            let pageSize = config.pageSize
            try Self.applyParams(params, algo: algo, priority: priority, to: &config) { name throws(ZramError) in
                // Check the parameters now, so a bad level fails here and not at disksize.
                do { _ = try makeCodec(name, params, pageSize) } catch {
                    throw ZramError(.EINVAL, "\(name): \(error)")
                }
            }
        }
    }

    /// Stores `params` where the kernel keeps them: per priority. `priority=N` names the
    /// priority; `algo=NAME` the lowest priority running NAME (the kernel's lookup); neither
    /// the primary. An algorithm no priority runs yet keeps them by name until it is chosen
    /// (a zramd extension: the kernel refuses that with EINVAL).
    static func applyParams(
        _ params: CodecParams, algo: String?, priority: Int?, to config: inout DeviceConfig,
        check: (String) throws(ZramError) -> Void
    ) throws(ZramError) {
        if let algo {
            try check(algo)
            if config.primary.name == algo {
                config.primary.params = params
            } else if let p = (1...3).first(where: { config.secondary[$0]?.name == algo }) {
                config.secondary[p]!.params = params
            } else {
                config.paramsByName[algo] = params
            }
            return
        }
        let chosen = priority ?? 0
        if chosen == 0 {
            try check(config.primary.name)
            config.primary.params = params
        } else {
            guard let name = config.secondary[chosen]?.name else { throw ZramError(.EINVAL, "no algorithm has priority \(chosen)") }
            try check(name)
            config.secondary[chosen]!.params = params
        }
    }

    /// The bytes of a dictionary file inside the data directory.
    private func readDictionary(_ name: String) throws(ZramError) -> [UInt8] {
        let path: String
        do { path = try BackingStore.resolve(name: name, inDataDir: dataDir) } catch {
            throw ZramError(.EINVAL, "dict \(name): \(error.reason)")
        }
        // Walked from the data directory's descriptor, following no symbolic link at any
        // component: a link swapped in after the check fails the open. Non-blocking, so a
        // FIFO cannot hang the request; only a regular file is read.
        let fd = DataDirectory.open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw ZramError(.EINVAL, "dict \(name): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ZramError(.EINVAL, "dict \(name) is not a regular file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw ZramError(.EINVAL, "dict \(name): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            bytes += chunk[..<n]
            guard bytes.count <= 1 << 20 else { throw ZramError(.E2BIG, "dict \(name) is larger than 1 MiB") }
        }
        guard !bytes.isEmpty else { throw ZramError(.EINVAL, "dict \(name) is empty") }
        return bytes
    }
}
