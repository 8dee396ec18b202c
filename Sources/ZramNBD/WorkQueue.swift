import Glibc

/// Fixed pthreads running the requests a connection hands off (FIFO, unbounded: each
/// connection bounds what it has in flight, so the queue is bounded by their sum).
///
/// `@unchecked Sendable`: `jobs`, `head` and `stopping` are only touched with `mutex` held.
final class WorkQueue: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var jobs: [Job?] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []

    /// Starts `count` threads.
    init(threads count: Int) {
        mutex.initialize(to: pthread_mutex_t())
        wake.initialize(to: pthread_cond_t())
        precondition(pthread_mutex_init(mutex, nil) == 0)
        precondition(pthread_cond_init(wake, nil) == 0)
        for _ in 0..<max(1, count) {
            threads.append(spawnThread { [self] in while let job = next() { job() } })
        }
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`; false once the queue is shutting down.
    @discardableResult
    func submit(_ job: @escaping Job) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !stopping else { return false }
        jobs.append(job)
        pthread_cond_signal(wake)
        return true
    }

    /// Runs what is queued, then joins the threads.
    func shutdown() {
        pthread_mutex_lock(mutex)
        let toJoin = stopping ? [] : threads
        stopping = true
        threads = []
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        for thread in toJoin { pthread_join(thread, nil) }
    }

    private func next() -> Job? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == jobs.count {
            if stopping { return nil }
            pthread_cond_wait(wake, mutex)
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

/// Starts a joinable pthread running `body`.
func spawnThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
        return nil
    }, Unmanaged.passRetained(Box(body)).toOpaque())
    precondition(rc == 0, "pthread_create: \(rc)")
    return thread
}
