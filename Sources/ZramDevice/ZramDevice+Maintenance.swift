extension ZramDevice {
    /// Marks stored pages idle: all of them, or those not accessed for `age` seconds
    /// (zram's `idle`). Same-filled and written-back pages are never marked.
    /// - Returns: pages newly marked.
    /// - Parameter progress: counters to publish and a cancellation to honour every 4096 slots.
    @discardableResult
    func markIdle(olderThan age: Int? = nil, progress: JobProgress? = nil) throws(ZramError) -> Int {
        try withMaintenance("idle") { live in
            let now = live.now
            var marked = 0
            progress?.begin(total: live.slots.count)
            for index in 0..<live.slots.count {
                if index % 4096 == 0, progress != nil {
                    progress?.update(examined: index, processed: marked)
                    if stopRequested(progress) { return marked }
                }
                live.slots.withLock(index) {
                    var state = live.slots[index]
                    guard state.flags.contains(.stored), state.flags.isDisjoint(with: [.same, .writtenBack, .idle]) else { return }
                    if let age, Int(now) - Int(state.accessTime) < age { return }
                    state.flags.insert(.idle)
                    live.slots[index] = state
                    marked += 1
                }
            }
            progress?.update(examined: live.slots.count, processed: marked)
            return marked
        }
    }

    /// Compacts the allocator (zram's `compact`).
    /// - Returns: chunks (pages) freed.
    /// - Parameter progress: counters to publish (one step: compaction is not interrupted).
    @discardableResult
    public func compact(progress: JobProgress? = nil) throws(ZramError) -> Int {
        try withMaintenance("compact") { live in
            progress?.begin(total: 1)
            let freed = live.pool.compact()
            progress?.update(examined: 1, processed: 1)
            return freed
        }
    }
}
