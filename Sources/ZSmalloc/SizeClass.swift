import ZSync
/// One size class: its shape and its zspages sorted into fullness groups.
///
/// Groups follow the kernel: 0 empty, 1...10 for 0–9 %, 10–19 %, …, 90–99 % used,
/// 11 full. Everything here is guarded by `lock`.
final class SizeClass: @unchecked Sendable {
    static let groupCount = 12
    static let fullGroup = 11

    let index: Int
    let shape: ClassShape
    let lock = PThreadMutex()
    // Raw storage: these are touched on every malloc and free, and stored arrays or
    // counters of a class would pay a dynamic exclusivity check on each access.
    private let heads: UnsafeMutablePointer<ZsPagePointer?>
    private let counts: UnsafeMutablePointer<Int>
    private var groupCountsView: UnsafeBufferPointer<Int> { UnsafeBufferPointer(start: counts, count: SizeClass.groupCount) }
    /// zspages per fullness group.
    var groupCounts: [Int] { Array(groupCountsView) }
    /// zspages of the class (kept in `counts` after the groups).
    var zspages: Int { counts[SizeClass.groupCount] }
    /// Used slots across the class's zspages.
    var objectsUsed: Int { counts[SizeClass.groupCount + 1] }

    init(index: Int, shape: ClassShape) {
        self.index = index
        self.shape = shape
        heads = .allocate(capacity: SizeClass.groupCount)
        heads.initialize(repeating: nil, count: SizeClass.groupCount)
        counts = .allocate(capacity: SizeClass.groupCount + 2)
        counts.initialize(repeating: 0, count: SizeClass.groupCount + 2)
    }

    deinit {
        heads.deallocate()
        counts.deallocate()
    }

    /// Slots in all zspages of the class.
    var objectsAllocated: Int { zspages * shape.objectsPerZspage }

    /// The group a zspage with `inUse` used slots belongs in.
    @inline(__always) func group(forInUse inUse: Int) -> Int {
        if inUse == 0 { return 0 }
        if inUse == shape.objectsPerZspage { return SizeClass.fullGroup }
        return 100 * inUse / shape.objectsPerZspage / 10 + 1
    }

    /// The fullest zspage that still has a free slot.
    @inline(__always) func fullestNonFull() -> ZsPagePointer? {
        for group in stride(from: SizeClass.fullGroup - 1, through: 0, by: -1) {
            if let page = heads[group] { return page }
        }
        return nil
    }

    /// The emptiest zspage with at least one used slot and at least one free one.
    func emptiestPartial(excluding other: ZsPagePointer?) -> ZsPagePointer? {
        for group in 1..<SizeClass.fullGroup {
            var page = heads[group]
            while let candidate = page {
                if candidate != other { return candidate }
                page = candidate.pointee.next
            }
        }
        return nil
    }

    /// Adds a new, empty zspage.
    func adopt(_ page: ZsPagePointer) {
        counts[SizeClass.groupCount] += 1
        page.pointee.group = 0
        link(page, into: 0)
    }

    /// Removes a zspage that became empty; the caller frees it.
    func evict(_ page: ZsPagePointer) {
        unlink(page)
        counts[SizeClass.groupCount] -= 1
    }

    /// Counts one object taken or given back in `page` and moves it to its new group.
    @inline(__always) func account(_ page: ZsPagePointer, delta: Int) {
        counts[SizeClass.groupCount + 1] += delta
        let group = self.group(forInUse: Int(page.pointee.inUse))
        if group != Int(page.pointee.group) {
            unlink(page)
            link(page, into: group)
        }
    }

    @inline(__always) private func link(_ page: ZsPagePointer, into group: Int) {
        page.pointee.group = Int32(group)
        page.pointee.prev = nil
        page.pointee.next = heads[group]
        heads[group]?.pointee.prev = page
        heads[group] = page
        counts[group] += 1
    }

    @inline(__always) private func unlink(_ page: ZsPagePointer) {
        let group = Int(page.pointee.group)
        if let prev = page.pointee.prev { prev.pointee.next = page.pointee.next } else { heads[group] = page.pointee.next }
        page.pointee.next?.pointee.prev = page.pointee.prev
        page.pointee.prev = nil
        page.pointee.next = nil
        counts[group] -= 1
    }

    /// Every zspage of the class (for teardown).
    func allPages() -> [ZsPagePointer] {
        var out: [ZsPagePointer] = []
        for group in 0..<SizeClass.groupCount {
            var page = heads[group]
            while let p = page { out.append(p); page = p.pointee.next }
        }
        return out
    }
}
