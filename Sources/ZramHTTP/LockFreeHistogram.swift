import Synchronization

/// A Prometheus histogram of durations kept in atomics: recording takes no lock and allocates
/// nothing (one bucket add and one sum add), so every request and every codec call can be
/// timed. Rendered in the text exposition by `ServerMetrics`.
final class LockFreeHistogram: @unchecked Sendable {
    // `@unchecked Sendable`: `counts` is only ever accessed atomically.
    /// Upper bounds in nanoseconds, ascending; a last bucket (+Inf) follows them.
    let bounds: [UInt64]
    private let counts: UnsafeMutablePointer<Atomic<Int>>
    private let sumNanos = Atomic<Int>(0)

    init(bounds: [Duration]) {
        self.bounds = bounds.map { UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000) }
        counts = .allocate(capacity: self.bounds.count + 1)
        for i in 0...self.bounds.count { (counts + i).initialize(to: Atomic(0)) }
    }

    deinit {
        counts.deinitialize(count: bounds.count + 1)
        counts.deallocate()
    }

    @inline(__always)
    func record(nanoseconds: UInt64) {
        var bucket = 0
        while bucket < bounds.count && nanoseconds > bounds[bucket] { bucket += 1 }
        counts[bucket].add(1, ordering: .relaxed)
        sumNanos.add(Int(truncatingIfNeeded: nanoseconds), ordering: .relaxed)
    }

    /// Observations so far.
    var count: Int { (0...bounds.count).reduce(0) { $0 + counts[$1].load(ordering: .relaxed) } }

    /// The `_bucket`, `_sum` and `_count` lines of series `name` with `labels` (`key="value",…`
    /// or empty). Buckets are cumulative, as the format wants.
    func render(_ name: String, labels: String, into text: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += counts[i].load(ordering: .relaxed)
            text += "\(name)_bucket{\(prefix)le=\"\(Double(bound) / 1e9)\"} \(cumulative)\n"
        }
        cumulative += counts[bounds.count].load(ordering: .relaxed)
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        text += "\(name)_sum\(braces) \(Double(sumNanos.load(ordering: .relaxed)) / 1e9)\n"
        text += "\(name)_count\(braces) \(cumulative)\n"
    }
}
