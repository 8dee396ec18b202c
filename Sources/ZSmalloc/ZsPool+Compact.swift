extension ZsPool {
    /// Migrates objects from the sparsest zspages of each class into the densest and
    /// returns emptied chunks to the system.
    ///
    /// Classes are walked largest first. The pool lock is held for writing for one
    /// source/destination pair at a time, so readers get in between; a zspage that a
    /// reader holds is skipped rather than waited for.
    /// - Returns: the number of chunks freed (also added to `pagesCompacted`).
    @discardableResult
    public func compact() -> Int {
        var freed = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: pageSize, alignment: 16)
        defer { scratch.deallocate() }
        for cls in classes.reversed() where !cls.shape.isHuge {
            // A class with less than one zspage of free slots has nothing to give back: look
            // under its own lock first, so a pass over a packed pool never stalls readers.
            while cls.lock.withLock({ cls.objectsAllocated - cls.objectsUsed >= cls.shape.objectsPerZspage }) {
                poolLock.writeLock()
                cls.lock.lock()
                let outcome = migrateOnePair(cls, scratch: scratch)
                cls.lock.unlock()
                poolLock.unlock()
                guard let outcome else { break }
                if let emptied = outcome {
                    release(emptied, chainLength: cls.shape.chainLength)
                    freed += cls.shape.chainLength
                }
            }
        }
        // Compaction is when memory goes back to the system, cached free chunks included.
        arena.trim()
        compactedChunks.add(freed, ordering: .relaxed)
        return freed
    }

    /// Moves objects from the class's emptiest partial zspage into its fullest one.
    /// Called with the pool lock held for writing and the class lock held.
    /// - Returns: nil when there is nothing (more) to gain; otherwise the source zspage
    ///   if it became empty (already unlinked), or `.some(nil)` if it did not.
    private func migrateOnePair(_ cls: SizeClass, scratch: UnsafeMutableRawBufferPointer) -> ZsPagePointer?? {
        // Compacting only pays while the free slots add up to at least one whole zspage.
        guard cls.objectsAllocated - cls.objectsUsed >= cls.shape.objectsPerZspage,
            let destination = cls.fullestNonFull(), destination.pointee.inUse > 0,
            let source = cls.emptiestPartial(excluding: destination),
            source.pointee.inUse <= destination.pointee.inUse
        else { return nil }
        guard source.tryWriteLock() else { return nil }
        defer { source.unlock() }
        guard destination.tryWriteLock() else { return nil }
        defer { destination.unlock() }

        let size = cls.shape.size
        var slot = 0
        while source.pointee.inUse > 0, destination.pointee.freeHead != ZsPage.noSlot {
            let handle = source.pointee.slots[slot]
            if handle & ZsPage.freeBit != 0 { slot += 1; continue }
            source.copyOut(offset: slot * size, count: size, chunkSize: pageSize, to: scratch.baseAddress!)
            let newSlot = destination.takeSlot(for: handle)
            destination.copyIn(offset: Int(newSlot) * size, count: size, chunkSize: pageSize, from: scratch.baseAddress!)
            handles[handle] = Self.encode(destination, slot: newSlot)
            cls.account(destination, delta: 1)
            source.releaseSlot(UInt32(slot))
            cls.account(source, delta: -1)
            slot += 1
        }
        if source.pointee.inUse == 0 {
            cls.evict(source)
            return .some(source)
        }
        return .some(nil)
    }
}
