import ZSync

/// A Prometheus histogram of durations kept in per-CPU atomics: recording takes no lock,
/// allocates nothing and writes only this CPU's counters (one bucket add and one sum add),
/// so every request and every codec call can be timed. Rendered in the text exposition by
/// `ServerMetrics`.
final class LockFreeHistogram: Sendable {
    /// Upper bounds in nanoseconds, ascending; a last bucket (+Inf) follows them.
    let bounds: [UInt64]
    /// The buckets, then the sum of nanoseconds.
    private let counts: PerCPUCounters

    init(bounds: [Duration]) {
        self.bounds = bounds.map { UInt64($0.components.seconds) * 1_000_000_000 + UInt64($0.components.attoseconds / 1_000_000_000) }
        counts = PerCPUCounters(slots: self.bounds.count + 2)
    }

    private var sumSlot: Int { bounds.count + 1 }

    @inline(__always)
    func record(nanoseconds: UInt64) {
        var bucket = 0
        while bucket < bounds.count && nanoseconds > bounds[bucket] { bucket += 1 }
        counts.add(bucket, 1)
        counts.add(sumSlot, Int(truncatingIfNeeded: nanoseconds))
    }

    /// Observations so far.
    var count: Int { (0...bounds.count).reduce(0) { $0 + counts.load($1) } }

    /// The `_bucket`, `_sum` and `_count` lines of series `name` with `labels` (`key="value",…`
    /// or empty). Buckets are cumulative, as the format wants.
    func render(_ name: String, labels: String, into text: inout String) {
        let prefix = labels.isEmpty ? "" : labels + ","
        var cumulative = 0
        for (i, bound) in bounds.enumerated() {
            cumulative += counts.load(i)
            text += "\(name)_bucket{\(prefix)le=\"\(Double(bound) / 1e9)\"} \(cumulative)\n"
        }
        cumulative += counts.load(bounds.count)
        text += "\(name)_bucket{\(prefix)le=\"+Inf\"} \(cumulative)\n"
        let braces = labels.isEmpty ? "" : "{\(labels)}"
        text += "\(name)_sum\(braces) \(Double(counts.load(sumSlot)) / 1e9)\n"
        text += "\(name)_count\(braces) \(cumulative)\n"
    }
}
