import CLinux
import Glibc
import Synchronization

/// Counters kept in one row per CPU: adding touches only the calling CPU's row (its own
/// cache lines), so threads on different cores never write the same line; reading sums the
/// rows. For what every request bumps (request and codec metrics): one shared atomic written
/// from both cores of this machine cost about 0.1 µs per request each (docs/BENCHMARKS.md).
///
/// A thread that moves to another CPU between looking its CPU up and adding still adds
/// atomically, to the row it looked up; sums stay exact.
public final class PerCPUCounters: @unchecked Sendable {
    // `@unchecked Sendable`: the counters are only ever accessed atomically.
    /// Counters per row.
    public let slots: Int
    private let rows: Int
    /// Counters from one row to the next: a whole number of 64-byte lines.
    private let stride: Int
    private let base: UnsafeMutablePointer<Atomic<Int>>

    public init(slots: Int) {
        self.slots = slots
        rows = Self.rows
        stride = (slots + 7) / 8 * 8
        base = UnsafeMutableRawPointer.allocate(byteCount: rows * stride * 8, alignment: 64)
            .bindMemory(to: Atomic<Int>.self, capacity: rows * stride)
        for i in 0..<(rows * stride) { (base + i).initialize(to: Atomic(0)) }
    }

    deinit {
        base.deinitialize(count: rows * stride)
        base.deallocate()
    }

    /// Rows: one per configured CPU, at most 16 (beyond that CPUs share rows).
    private static let rows = min(16, max(1, sysconf(Int32(_SC_NPROCESSORS_CONF))))

    @inline(__always)
    public func add(_ slot: Int, _ value: Int) {
        let cpu = Int(sched_getcpu())
        base[(cpu > 0 ? cpu % rows : 0) * stride + slot].add(value, ordering: .relaxed)
    }

    /// The sum of `slot` over the rows.
    public func load(_ slot: Int) -> Int {
        var sum = 0
        for row in 0..<rows { sum &+= base[row * stride + slot].load(ordering: .relaxed) }
        return sum
    }
}
