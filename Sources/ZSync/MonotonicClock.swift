import Glibc

/// The one clock for durations and ages: CLOCK_MONOTONIC, which wall-clock changes do not move.
public enum MonotonicClock {
    /// Nanoseconds since an arbitrary point (the machine's boot).
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Whole seconds since the same point.
    @inline(__always)
    public static func seconds() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec
    }
}
