import Foundation
import ZramDevice

/// The JSON view of a device: every readable attribute, parsed.
enum DeviceJSON {
    /// Field names of the multi-number attributes, in zram's order.
    static let fields: [String: [String]] = [
        "mm_stat": ["orig_data_size", "compr_data_size", "mem_used_total", "mem_limit", "mem_used_max",
                    "same_pages", "pages_compacted", "huge_pages", "huge_pages_since"],
        "io_stat": ["failed_reads", "failed_writes", "invalid_io", "notify_free"],
        "bd_stat": ["bd_count", "bd_reads", "bd_writes"],
        "debug_stat": ["recompress_attempts", "recompressed", "writeback_skipped", "recompress_failed"],
        "tier_stat": ["auto_written_back", "promoted", "writes_to_backing", "evicted", "auto_writeback_ms"],
    ]

    static func render(_ device: ZramDevice) -> String {
        var object: [String: Any] = ["name": device.name]
        if let backing = device.backingStatus {
            object["backing_store"] = ["open_report": backing.openReport, "last_fault": backing.lastFault ?? NSNull()] as [String: Any]
        }
        for (name, access) in ZramDevice.attributes where access.contains(.read) {
            guard let text = try? device.readAttribute(name) else { continue }
            object[name] = parse(name, text)
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func parse(_ name: String, _ text: String) -> Any {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch name {
        case "auto_writeback", "promotion", "eviction":
            // `enable=1 high_watermark=95 …` → {"enable": 1, "high_watermark": 95, …}
            var settings: [String: Int] = [:]
            for pair in trimmed.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, let value = Int(parts[1]) { settings[String(parts[0])] = value }
            }
            return settings
        case "mm_stat", "io_stat", "bd_stat", "debug_stat", "tier_stat":
            let numbers = trimmed.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
            // debug_stat starts with "version: 1".
            let values = name == "debug_stat" ? Array(numbers.dropFirst()) : numbers
            return Dictionary(uniqueKeysWithValues: zip(fields[name]!, values))
        case "comp_algorithm":
            return selection(trimmed)
        case "recomp_algorithm":
            var byPriority: [String: String] = [:]
            for line in trimmed.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                byPriority[String(parts[0].dropFirst())] = selection(String(parts[1]))["selected"] as? String
            }
            return byPriority
        case "backing_dev":
            return trimmed == "none" ? NSNull() : trimmed
        default:
            return Int(trimmed) ?? trimmed
        }
    }

    /// `lzo [lz4] zstd` → selected and available.
    static func selection(_ list: String) -> [String: Any] {
        let names = list.split(separator: " ").map(String.init)
        let selected = names.first { $0.hasPrefix("[") }.map { String($0.dropFirst().dropLast()) }
        return ["selected": selected ?? NSNull(), "available": names.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) }]
    }
}
