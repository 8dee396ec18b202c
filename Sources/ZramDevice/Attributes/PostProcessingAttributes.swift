extension ZramDevice {
    /// `idle`, `recompress`, `writeback`, `compact`: one-shot triggers.
    static let postProcessingAttributes: [Attribute] = [
        Attribute(
            "idle", cost: .maintenance,
            store: { device, body throws(ZramError) in
                let text = AttributeParsing.trimmed(body)
                try device.markIdle(olderThan: text == "all" ? nil : try AttributeParsing.unsigned(text, "idle age"))
            }),
        Attribute(
            "recompress", cost: .maintenance,
            store: { device, body throws(ZramError) in
                try device.recompress(parseRecompress(body))
            }),
        Attribute(
            "writeback", cost: .maintenance,
            store: { device, body throws(ZramError) in
                try device.writeback(parseWriteback(body))
            }),
        Attribute(
            "compact", cost: .maintenance,
            store: { device, _ throws(ZramError) in
                try device.compact()
            }),
    ]

    /// `type=idle|huge|huge_idle threshold=BYTES max_pages=N algo=NAME|priority=N`.
    static func parseRecompress(_ body: String) throws(ZramError) -> RecompressRequest {
        let pairs = try AttributeParsing.pairs(
            body, allowed: ["type", "threshold", "max_pages", "algo", "priority"], "recompress")
        var request = RecompressRequest()
        for (key, value) in pairs {
            switch key {
            case "type": request.kind = try SlotKind.parse(value, "recompress", allowed: SlotKind.recompressKinds)
            case "threshold": request.threshold = try AttributeParsing.size(value, "threshold")
            case "max_pages": request.maxPages = try AttributeParsing.unsigned(value, "max_pages")
            case "algo": request.algorithm = try algorithmName(value)
            default: request.priority = try AttributeParsing.unsigned(value, "priority")
            }
        }
        guard request.algorithm == nil || request.priority == nil else {
            throw ZramError(.EINVAL, "recompress takes algo= or priority=, not both")
        }
        if let priority = request.priority, !(1...3).contains(priority) {
            throw ZramError(.EINVAL, "recompress priority must be 1, 2 or 3, not \(priority)")
        }
        return request
    }

    /// `idle|huge|huge_idle|incompressible`, or `type=…` with any number of
    /// `page_index=N` and `page_indexes=LO-HI`.
    static func parseWriteback(_ body: String) throws(ZramError) -> WritebackRequest {
        let text = AttributeParsing.trimmed(body)
        if let kind = SlotKind(rawValue: text) { return WritebackRequest(kind: kind) }
        let pairs = try AttributeParsing.pairs(
            text, allowed: ["type", "page_index", "page_indexes"], repeatable: ["page_index", "page_indexes"], "writeback")
        guard !pairs.isEmpty else {
            throw ZramError(.EINVAL, "writeback needs a type (idle, huge, huge_idle, incompressible) or page indexes")
        }
        var request = WritebackRequest()
        for (key, value) in pairs {
            switch key {
            case "type": request.kind = try SlotKind.parse(value, "writeback")
            case "page_index":
                let index = try AttributeParsing.unsigned(value, "page_index")
                request.ranges.append(index...index)
            default:
                let bounds = value.split(separator: "-", omittingEmptySubsequences: false)
                guard bounds.count == 2 else { throw ZramError(.EINVAL, "page_indexes must be LO-HI, not \"\(value)\"") }
                let low = try AttributeParsing.unsigned(String(bounds[0]), "page_indexes")
                let high = try AttributeParsing.unsigned(String(bounds[1]), "page_indexes")
                guard low <= high else { throw ZramError(.ERANGE, "page_indexes \(value): LO is above HI") }
                request.ranges.append(low...high)
            }
        }
        request.ranges = coalesced(request.ranges)
        return request
    }

    /// The slots `ranges` cover, as sorted, disjoint, non-adjacent ranges: a body that
    /// repeats or overlaps ranges picks each slot once, and the list the device walks is
    /// never longer than the disk, however long the body.
    static func coalesced(_ ranges: [ClosedRange<Int>]) -> [ClosedRange<Int>] {
        var out: [ClosedRange<Int>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, range.lowerBound <= last.upperBound || range.lowerBound - 1 == last.upperBound {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                out.append(range)
            }
        }
        return out
    }
}
