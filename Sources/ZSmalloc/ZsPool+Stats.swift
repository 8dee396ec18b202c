/// One row of the per-class table (`/sys/kernel/debug/zsmalloc/<pool>/classes`).
public struct ClassStats: Sendable, Equatable {
    public let index: Int
    public let size: Int
    /// zspages per fullness group: 10%, 20%, …, 90%, 99%, 100% (the kernel's columns).
    package let fullness: [Int]
    package let objectsAllocated: Int
    package let objectsUsed: Int
    /// Chunks held by the class's zspages.
    package let chunksUsed: Int
    package let chunksPerZspage: Int
    /// zspages compaction could free if objects were packed perfectly.
    let freeable: Int
}

extension ZsPool {
    /// Chunks in use, across all classes.
    package var chunksInUse: Int { arena.chunksInUse }
    /// Bytes held from the system: chunks × page size (zram's `mem_used_total`).
    public var memoryUsed: Int { arena.chunksInUse * pageSize }
    /// The peak of `memoryUsed` since creation or the last `resetPeak()`.
    public var memoryUsedMax: Int { arena.peakChunks * pageSize }
    /// Makes the peak the current use (zram's `echo 0 > mem_used_max`).
    public func resetPeak() { arena.resetPeak() }
    /// Chunks freed by `compact()` so far (zram's `pages_compacted`).
    public var pagesCompacted: Int { compactedChunks.load(ordering: .relaxed) }

    /// A consistent snapshot of every class that has ever held a zspage or is asked for with `all`.
    package func classStats() -> [ClassStats] {
        classes.map { cls in
            cls.lock.withLock {
                let counts = cls.groupCounts
                return ClassStats(
                    index: cls.index, size: cls.shape.size,
                    fullness: Array(counts[1...SizeClass.fullGroup]),
                    objectsAllocated: cls.objectsAllocated, objectsUsed: cls.objectsUsed,
                    chunksUsed: cls.zspages * cls.shape.chainLength,
                    chunksPerZspage: cls.shape.chainLength,
                    freeable: (cls.objectsAllocated - cls.objectsUsed) / cls.shape.objectsPerZspage)
            }
        }
    }

    /// The class table as the kernel's debugfs prints it, with a Total row.
    public func formatClasses() -> String {
        let stats = classStats()
        let groups = ["10%", "20%", "30%", "40%", "50%", "60%", "70%", "80%", "90%", "99%", "100%"]
        var out =
            pad("class", 5) + pad("size", 6) + groups.map { pad($0, 6) }.joined()
            + pad("obj_allocated", 14) + pad("obj_used", 10) + pad("pages_used", 11)
            + pad("pages_per_zspage", 17) + pad("freeable", 9) + "\n"
        var total = (Array(repeating: 0, count: groups.count), 0, 0, 0, 0)
        for s in stats {
            out +=
                pad(String(s.index), 5) + pad(String(s.size), 6)
                + s.fullness.map { pad(String($0), 6) }.joined()
                + pad(String(s.objectsAllocated), 14) + pad(String(s.objectsUsed), 10)
                + pad(String(s.chunksUsed), 11) + pad(String(s.chunksPerZspage), 17)
                + pad(String(s.freeable), 9) + "\n"
            for g in groups.indices { total.0[g] += s.fullness[g] }
            total.1 += s.objectsAllocated
            total.2 += s.objectsUsed
            total.3 += s.chunksUsed
            total.4 += s.freeable
        }
        out +=
            pad("Total", 5) + pad("", 6) + total.0.map { pad(String($0), 6) }.joined()
            + pad(String(total.1), 14) + pad(String(total.2), 10) + pad(String(total.3), 11)
            + pad("", 17) + pad(String(total.4), 9) + "\n"
        return out
    }

    private func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(1, width - text.count)) + text
    }
}
