import Glibc

/// Monotonic timing for tests that bound how long something waited.
public enum Stopwatch {
    /// Milliseconds since an arbitrary point.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
    }

    /// What `body` returned and how many milliseconds it took.
    public static func measure<R>(_ body: () throws -> R) rethrows -> (R, Double) {
        let start = now()
        let result = try body()
        return (result, now() - start)
    }

    /// How many milliseconds `body` took.
    public static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        try measure(body).1
    }

    /// Polls `condition` every 10 ms for up to `seconds`; its last value.
    public static func eventually(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = now() + seconds * 1000
        while now() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}
