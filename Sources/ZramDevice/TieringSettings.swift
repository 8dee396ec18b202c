import Synchronization

/// The zramd extensions that let a device move pages between memory and its backing
/// store on its own (`auto_writeback`, `promotion`) or drop cold pages (`eviction`). All
/// off by default, so a device behaves as zram's until one is switched on; runtime
/// settings, like `mem_limit`, cleared by `reset`.
final class TieringSettings: Sendable {
    /// Write pages back when memory passes the high watermark, down to the low one.
    let autoWriteback = Atomic<Bool>(false)
    /// Percentages of `mem_limit`.
    let highWatermark = Atomic<Int>(TieringSettings.defaultHigh)
    let lowWatermark = Atomic<Int>(TieringSettings.defaultLow)
    /// Bring a written-back page read twice within `promoteWindow` seconds back into memory.
    let promote = Atomic<Bool>(false)
    let promoteWindow = Atomic<Int>(TieringSettings.defaultWindow)
    /// Without a backing store: drop the coldest pages instead of refusing writes at `mem_limit`.
    let evict = Atomic<Bool>(false)

    static let defaultHigh = 95
    static let defaultLow = 85
    static let defaultWindow = 60

    func reset() {
        autoWriteback.store(false, ordering: .relaxed)
        highWatermark.store(Self.defaultHigh, ordering: .relaxed)
        lowWatermark.store(Self.defaultLow, ordering: .relaxed)
        promote.store(false, ordering: .relaxed)
        promoteWindow.store(Self.defaultWindow, ordering: .relaxed)
        evict.store(false, ordering: .relaxed)
    }

    /// The watermarks in bytes for `limit`; nil without a limit (nothing to measure against).
    func watermarks(limit: Int) -> (high: Int, low: Int)? {
        guard limit > 0 else { return nil }
        return (limit / 100 * highWatermark.load(ordering: .relaxed), limit / 100 * lowWatermark.load(ordering: .relaxed))
    }
}
