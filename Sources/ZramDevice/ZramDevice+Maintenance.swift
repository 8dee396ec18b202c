extension ZramDevice {
    /// Marks stored pages idle: all of them, or those not accessed for `age` seconds
    /// (zram's `idle`). Same-filled and written-back pages are never marked.
    /// - Returns: pages newly marked.
    @discardableResult
    public func markIdle(olderThan age: Int? = nil) throws(ZramError) -> Int {
        try withMaintenance("idle") { live in
            let now = live.now
            var marked = 0
            for index in 0..<live.slots.count {
                live.slots.withLock(index) {
                    var state = live.slots[index]
                    guard state.flags.contains(.stored), state.flags.isDisjoint(with: [.same, .writtenBack, .idle]) else { return }
                    if let age, Int(now) - Int(state.accessTime) < age { return }
                    state.flags.insert(.idle)
                    live.slots[index] = state
                    marked += 1
                }
            }
            return marked
        }
    }

    /// Compacts the allocator (zram's `compact`).
    /// - Returns: chunks (pages) freed.
    @discardableResult
    public func compact() throws(ZramError) -> Int {
        try withMaintenance("compact") { $0.pool.compact() }
    }
}
