/// The slot kinds zram's `writeback` and `recompress` pick by (`type=`).
package enum SlotKind: String, Sendable, CaseIterable {
    case idle, huge, huge_idle, incompressible

    /// What `recompress` accepts: recompression is what marks slots incompressible.
    static let recompressKinds: [SlotKind] = [.idle, .huge, .huge_idle]

    /// The flags a slot must carry to be picked.
    var requiredFlags: SlotFlags {
        switch self {
        case .idle: .idle
        case .huge: .huge
        case .huge_idle: [.huge, .idle]
        case .incompressible: .incompressible
        }
    }

    /// A `type=` value of `attribute`, one of `allowed`.
    static func parse(_ value: String, _ attribute: String, allowed: [SlotKind] = allCases) throws(ZramError) -> SlotKind {
        guard let kind = SlotKind(rawValue: value), allowed.contains(kind) else {
            let names = allowed.map(\.rawValue)
            throw ZramError(
                .EINVAL, "\(attribute) type must be \(names.dropLast().joined(separator: ", ")) or \(names.last!), not \"\(value)\"")
        }
        return kind
    }
}
