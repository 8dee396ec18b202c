/// Why a backing-store operation failed, in terms zram's errnos can carry.
///
/// Every case has a one-line human reason (`reason`) and the errno name the
/// HTTP layer prints (`errnoName`), e.g. `zramd: EIO: backing file ... was removed`.
public enum BackingError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The store has no free block left (`capacityBlocks` reached) or the disk is full. ENOSPC.
    case noSpace(String)
    /// The file could not be read or written: SQLite I/O error, file removed or replaced,
    /// unwritable, truncated, corrupt, or a crc32 mismatch. EIO.
    case io(String)
    /// A read of a block that holds no data (never written, freed, or its row is gone). EIO.
    case notFound(Int64)
    /// `resolve(name:inDataDir:)` refused a backing-device name. EINVAL.
    case invalidPath(String)
    /// The caller broke the API contract (bad page size, length, unallocated block, double free,
    /// a file that is not a zramd backing store). EINVAL.
    case invalidArgument(String)
    /// Another `BackingStore` (in this or another process) holds the file. EBUSY, as zram's
    /// exclusive open of the backing block device.
    case busy(String)
    /// The store was closed (`close()`, device reset). ENODEV, like writeback with no backing device.
    case closed
    /// A write batch failed as a whole: its transaction was rolled back and every block in
    /// `blocks` was returned to the free pool (the caller must forget them, not free them).
    /// `errnoName` is the cause's.
    indirect case batchFailed(blocks: [Int64], cause: BackingError)

    /// zram's errno name for this error: `EIO`, `ENOSPC`, `EINVAL`, `EBUSY`, `ENODEV`.
    package var errnoName: String {
        switch self {
        case .noSpace: "ENOSPC"
        case .io, .notFound: "EIO"
        case .invalidPath, .invalidArgument: "EINVAL"
        case .busy: "EBUSY"
        case .closed: "ENODEV"
        case .batchFailed(_, let cause): cause.errnoName
        }
    }

    /// One line, no errno prefix.
    public var reason: String {
        switch self {
        case .noSpace(let why), .io(let why), .invalidPath(let why), .invalidArgument(let why), .busy(let why):
            why
        case .notFound(let block): "backing block \(block) holds no data"
        case .closed: "backing store is closed"
        case .batchFailed(let blocks, let cause):
            "write batch of \(blocks.count) block(s) \(BackingError.describe(blocks)) rolled back: \(cause.reason)"
        }
    }

    /// The error that caused a failed batch (or `self` when this is not a batch failure).
    package var rootCause: BackingError {
        if case .batchFailed(_, let cause) = self { return cause.rootCause }
        return self
    }

    /// `EIO: backing block 7 holds no data`.
    public var description: String { "\(errnoName): \(reason)" }

    /// `[3, 4, 9]`, or `[3 … 40]` (first and last) for long lists.
    static func describe(_ blocks: [Int64]) -> String {
        if blocks.count <= 8 { return "[" + blocks.map(String.init).joined(separator: ", ") + "]" }
        return "[\(blocks[0]) … \(blocks[blocks.count - 1])]"
    }
}
