/// A stable name for one allocated object; it survives compaction.
///
/// It indexes the pool's handle table, which says where the object lives now.
public struct Handle: Hashable, Sendable, CustomStringConvertible {
    /// The table index, never 0.
    public let raw: UInt32

    /// Rebuilds a handle from `raw` (as stored in a device slot).
    public init(raw: UInt32) {
        precondition(raw != 0, "0 is not a handle")
        self.raw = raw
    }

    public var description: String { "h\(raw)" }
}

/// What the pool can fail with.
public enum ZsError: Error, Equatable, Sendable {
    /// The system refused memory for a new zspage.
    case outOfMemory
    /// The handle table is full.
    case tooManyObjects
}
