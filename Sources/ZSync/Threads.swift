import Glibc

/// Real threads for work that may sleep (not cooperative tasks, which must never block).
public enum PThread {
    /// Starts a joinable thread running `body`; join it with `pthread_join`.
    @discardableResult
    public static func spawn(_ body: @escaping @Sendable () -> Void) -> pthread_t {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
                return nil
            }, Unmanaged.passRetained(Box(body)).toOpaque())
        checked(rc, "pthread_create")
        return thread
    }

    /// Waits for a thread started by `spawn` to finish.
    public static func join(_ thread: pthread_t) {
        checked(pthread_join(thread, nil), "pthread_join")
    }

    /// Starts a detached thread running `body`.
    public static func detach(_ body: @escaping @Sendable () -> Void) {
        checked(pthread_detach(spawn(body)), "pthread_detach")
    }

    /// Lowers the calling thread's priority to `nice` (on Linux the nice value is per thread,
    /// and 0 names the calling thread): background work yields the CPU to serving.
    public static func setNice(_ nice: Int32) {
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice)
    }
}
