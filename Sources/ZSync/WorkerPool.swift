import Glibc

/// Fixed threads running jobs from a FIFO, bounded or not: the HTTP server's workers and
/// background workers, and the NBD server's pool.
public final class WorkerPool: @unchecked Sendable {
    // `@unchecked Sendable`: `jobs`, `head`, `stopping` and `threads` are only touched with `mutex` held.
    public typealias Job = @Sendable () -> Void

    private let mutex = PThreadMutex()
    private let wake = PThreadCondition()
    private let capacity: Int?
    private var jobs: [Job?] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []

    /// Starts `count` threads at nice value `nice` (0: the process's own priority).
    /// - Parameter capacity: the most jobs waiting at once (nil: unbounded, for callers that
    ///   bound what they queue themselves).
    public init(threads count: Int, capacity: Int?, nice: Int32 = 0) {
        self.capacity = capacity.map { max(1, $0) }
        for _ in 0..<max(1, count) {
            threads.append(
                PThread.spawn { [self] in
                    if nice != 0 { PThread.setNice(nice) }
                    while let job = next() { job() }
                })
        }
    }

    /// Queues `job`; false when the queue is full or the pool is shutting down.
    @discardableResult
    public func trySubmit(_ job: @escaping Job) -> Bool {
        mutex.withLock {
            guard !stopping, capacity.map({ jobs.count - head < $0 }) ?? true else { return false }
            jobs.append(job)
            wake.signal()
            return true
        }
    }

    /// Runs what is queued, then joins the threads.
    public func shutdown() {
        let toJoin: [pthread_t]? = mutex.withLock {
            guard !stopping else { return nil }
            stopping = true
            wake.broadcast()
            defer { threads = [] }
            return threads
        }
        for thread in toJoin ?? [] { checked(pthread_join(thread, nil), "pthread_join") }
    }

    private func next() -> Job? {
        mutex.lock()
        defer { mutex.unlock() }
        while head == jobs.count {
            if stopping { return nil }
            wake.wait(mutex)
        }
        let job = jobs[head]
        jobs[head] = nil
        head += 1
        // Reclaim the consumed prefix once it dominates, so the array stays small.
        if head == jobs.count || head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}
