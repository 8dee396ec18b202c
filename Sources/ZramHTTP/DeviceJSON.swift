import Foundation
import ZramDevice

/// The JSON view of a device: every readable attribute, parsed.
enum DeviceJSON {
    static func render(_ device: ZramDevice) -> String {
        var object: [String: Any] = ["name": device.name]
        if let backing = device.backingStatus {
            object["backing_store"] = ["open_report": backing.openReport, "last_fault": backing.lastFault ?? NSNull()] as [String: Any]
        }
        for (name, info) in ZramDevice.attributeInfo where info.access.contains(.read) {
            guard let text = try? device.readAttribute(name) else { continue }
            object[name] = parse(info.shape, text)
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// An attribute's text as JSON, by the shape its declaration gives.
    static func parse(_ shape: AttributeShape, _ text: String) -> Any {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        switch shape {
        case .settings:
            // `enable=1 high_watermark=95 …` → {"enable": 1, "high_watermark": 95, …}
            var settings: [String: Int] = [:]
            for pair in trimmed.split(separator: " ") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, let value = Int(parts[1]) { settings[String(parts[0])] = value }
            }
            return settings
        case .fields(let names, let versioned):
            let numbers = trimmed.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
            // A versioned stat (debug_stat) starts with "version: 1".
            return Dictionary(uniqueKeysWithValues: zip(names, versioned ? Array(numbers.dropFirst()) : numbers))
        case .selection:
            return selection(trimmed)
        case .perPriority:
            var byPriority: [String: String] = [:]
            for line in trimmed.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2 else { continue }
                byPriority[String(parts[0].dropFirst())] = selection(String(parts[1]))["selected"] as? String
            }
            return byPriority
        case .nameOrNone:
            return trimmed == "none" ? NSNull() : trimmed
        case .scalar:
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
