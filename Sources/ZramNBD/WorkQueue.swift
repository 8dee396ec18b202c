import Glibc
import ZSync

/// Fixed pthreads running the requests a connection hands off (FIFO, unbounded: each
/// connection bounds what it has in flight, so the queue is bounded by their sum).
///
/// `@unchecked Sendable`: `jobs`, `head` and `stopping` are only touched with `mutex` held.
final class WorkQueue: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let mutex = PThreadMutex()
    private let wake = PThreadCondition()
    private var jobs: [Job?] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []

    /// Starts `count` threads.
    init(threads count: Int) {
        for _ in 0..<max(1, count) {
            threads.append(PThread.spawn { [self] in while let job = next() { job() } })
        }
    }

    /// Queues `job`; false once the queue is shutting down.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        mutex.lock()
        defer { mutex.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        wake.signal()
        return true
    }

    /// Runs what is queued, then joins the threads.
    func shutdown() {
        mutex.lock()
        let toJoin = stopping ? [] : threads
        stopping = true
        threads = []
        wake.broadcast()
        mutex.unlock()
        for thread in toJoin { pthread_join(thread, nil) }
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
        if head > 1024, head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}
