import Glibc

/// Fixed pthreads running offloaded jobs from a bounded FIFO.
///
/// `@unchecked Sendable`: `jobs`, `head` and `stopping` are only touched with `mutex` held.
final class WorkerPool: @unchecked Sendable {
    typealias Job = @Sendable () -> Void

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let capacity: Int
    private var jobs: [Job?] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []
    private let nice: Int32

    /// Starts `count` threads at nice value `nice` (0: the process's own priority).
    init(threads count: Int, capacity: Int, nice: Int32 = 0) {
        self.capacity = max(1, capacity)
        self.nice = nice
        mutex.initialize(to: pthread_mutex_t())
        wake.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
        for _ in 0..<max(1, count) {
            var thread = pthread_t()
            let me = Unmanaged.passRetained(self).toOpaque()
            let rc = pthread_create(&thread, nil, { raw in
                let pool = Unmanaged<WorkerPool>.fromOpaque(raw!).takeRetainedValue()
                pool.run()
                return nil
            }, me)
            precondition(rc == 0, "pthread_create: \(rc)")
            threads.append(thread)
        }
    }

    deinit {
        pthread_cond_destroy(wake)
        pthread_mutex_destroy(mutex)
        wake.deallocate()
        mutex.deallocate()
    }

    /// Queues `job`; false when the queue is full or the pool is shutting down.
    func trySubmit(_ job: @escaping Job) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !stopping, jobs.count - head < capacity else { return false }
        jobs.append(job)
        pthread_cond_signal(wake)
        return true
    }

    /// Runs what is queued, then joins the threads.
    func shutdown() {
        pthread_mutex_lock(mutex)
        let alreadyStopping = stopping
        stopping = true
        pthread_cond_broadcast(wake)
        let toJoin = threads
        threads = []
        pthread_mutex_unlock(mutex)
        guard !alreadyStopping else { return }
        for thread in toJoin { pthread_join(thread, nil) }
    }

    private func run() {
        // Linux applies a nice value to the calling thread alone when given its thread id.
        if nice != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(gettid()), nice) }
        while let job = next() { job() }
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
        // Reclaim the consumed prefix once it dominates, so the array stays small.
        if head == jobs.count || head > 64 && head * 2 > jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}

/// glibc's `gettid`, which the Glibc module does not import.
@_silgen_name("gettid")
private func gettid() -> Int32
