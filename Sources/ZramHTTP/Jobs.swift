import Foundation
import Glibc
import ZSync
import ZramDevice

/// One post-processing run started asynchronously (`PUT /sys/block/zram<id>/<attr>?async=1`).
///
/// `@unchecked Sendable`: the mutable fields are only touched with `lock` held; the
/// progress counters are atomics of their own.
public final class Job: @unchecked Sendable {
    /// What a job is doing, or how it ended.
    public enum State: String, Sendable { case queued, running, done, failed, cancelled }

    public let id: Int
    public let device: ZramDevice
    public let operation: String
    public let body: String
    public let progress = JobProgress()
    let createdAt = Date()

    private let lock = PThreadMutex()
    /// What the run recorded; guarded by `lock`.
    private struct Record {
        var startedAt: Date?
        var finishedAt: Date?
        var ending: State?
        var failure: ZramError?
        var result: Int?
        var before: MMStat?
        var after: MMStat?
    }
    private var record = Record()

    init(id: Int, device: ZramDevice, operation: String, body: String) {
        self.id = id
        self.device = device
        self.operation = operation
        self.body = body
    }

    /// The current state: an ended job's outcome, else running once the device run holds
    /// the post-processing lock, else queued.
    public var state: State {
        lock.withLock { record.ending } ?? (progress.isRunning ? .running : .queued)
    }

    /// True until the job has ended.
    package var isActive: Bool { lock.withLock { record.ending == nil } }

    /// Runs the job on the calling thread and records its outcome.
    func run(_ prepared: PreparedJob) {
        let stat = device.mmStat
        lock.withLock {
            record.startedAt = Date()
            record.before = stat
        }
        var outcome: State = .done
        var error: ZramError?
        var processed: Int?
        do throws(ZramError) {
            processed = try device.run(prepared, progress: progress)
            // A cancel that came after the last batch changed nothing: the job is done.
            if progress.isCancelled, progress.examined < progress.total { outcome = .cancelled }
        } catch let failed {
            outcome = .failed
            error = failed
        }
        let end = device.mmStat
        lock.withLock {
            record.finishedAt = Date()
            record.after = end
            record.result = processed
            record.failure = error
            record.ending = outcome
        }
    }

    /// The JSON object `GET /jobs/<id>` answers.
    func json() -> [String: Any] {
        let record = lock.withLock { self.record }
        let started = record.startedAt, finished = record.finishedAt, ending = record.ending
        let before = record.before, after = record.after, failure = record.failure, result = record.result
        let state: State = ending ?? (progress.isRunning ? .running : .queued)
        let total = progress.total, examined = progress.examined, processed = progress.processed
        let now = after ?? (before == nil ? nil : device.mmStat)
        var object: [String: Any] = [
            "id": id, "device": device.name, "operation": operation, "body": body, "state": state.rawValue,
            "location": "/jobs/\(id)",
            "pages": ["total": total, "examined": examined, "processed": processed, "skipped": max(0, examined - processed)],
            "created_at": Self.timestamp(createdAt),
            "started_at": started.map(Self.timestamp) ?? NSNull(),
            "finished_at": finished.map(Self.timestamp) ?? NSNull(),
            "bytes_before": before?.comprDataSize ?? NSNull(), "bytes_after": now?.comprDataSize ?? NSNull(),
            "mem_used_before": before?.memUsedTotal ?? NSNull(), "mem_used_after": now?.memUsedTotal ?? NSNull(),
            "result": result ?? NSNull(),
            "error": failure.map { ErrorText.body($0).trimmingCharacters(in: .newlines) } ?? NSNull(),
            "cancel_requested": progress.isCancelled,
        ]
        var rate = 0.0
        if let started, state != .queued {
            let seconds = (finished ?? Date()).timeIntervalSince(started)
            if seconds > 0 { rate = Double(examined) / seconds }
            object["elapsed_seconds"] = (seconds * 1000).rounded() / 1000
        } else {
            object["elapsed_seconds"] = 0
        }
        object["rate_pages_per_second"] = rate.rounded()
        object["eta_seconds"] = state == .running && rate > 0 ? ((Double(total - examined) / rate) * 10).rounded() / 10 : NSNull()
        object["percent"] = total > 0 ? (Double(examined) * 1000 / Double(total)).rounded() / 10 : (ending == .done ? 100 : 0)
        return object
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Jobs: at most one active per device, started on a thread of their own at a lower CPU
/// priority, kept in a bounded history once ended.
///
/// `@unchecked Sendable`: `jobs` and `nextID` are only touched with `lock` held.
public final class JobManager: @unchecked Sendable {
    /// Ended jobs kept for `GET /jobs`.
    package static let historyLimit = 32
    /// The nice value job threads run at, as the background workers do.
    static let nice: Int32 = 10

    private let lock = PThreadMutex()
    private var jobs: [Job] = []
    private var nextID = 1
    private var finishedCounts: [String: Int] = [:]

    public init() {}

    /// Starts `prepared` on `device` unless another job is active there.
    /// - Throws: EBUSY naming the job that is active on the device.
    public func start(_ prepared: PreparedJob, on device: ZramDevice) throws(ZramError) -> Job {
        let job = try lock.withLock { () throws(ZramError) -> Job in
            if let active = jobs.last(where: { $0.device === device && $0.isActive }) {
                throw ZramError(
                    .EBUSY,
                    "\(device.name) is running job \(active.id) (\(active.operation)); "
                        + "wait for it or cancel it with DELETE /jobs/\(active.id)")
            }
            let job = Job(id: nextID, device: device, operation: prepared.operation, body: prepared.body)
            nextID += 1
            jobs.append(job)
            trimLocked()
            return job
        }
        let thread = Thread { [self] in
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(jobThreadID()), Self.nice)
            job.run(prepared)
            lock.withLock {
                finishedCounts["\(job.device.name)|\(job.state.rawValue)", default: 0] += 1
                trimLocked()
            }
        }
        thread.name = "zramd-job-\(job.id)"
        thread.start()
        return job
    }

    /// The job with `id`, if it is still known.
    public func job(_ id: Int) -> Job? {
        lock.withLock { jobs.first { $0.id == id } }
    }

    /// Active jobs and the history, oldest first.
    public var all: [Job] { lock.withLock { jobs } }

    /// Asks every active job to stop and waits up to `seconds` for them to end.
    /// - Returns: true when none is left active.
    @discardableResult
    public func cancelAll(waiting seconds: Double) -> Bool {
        let active = all.filter(\.isActive)
        for job in active { job.progress.cancel() }
        let deadline = Date().addingTimeInterval(seconds)
        while active.contains(where: \.isActive) {
            guard Date() < deadline else { return false }
            usleep(10_000)
        }
        return true
    }

    /// Drops the oldest ended jobs beyond the history limit; the caller holds `lock`.
    private func trimLocked() {
        var ended = jobs.filter { !$0.isActive }.count
        jobs.removeAll { job in
            guard ended > Self.historyLimit, !job.isActive else { return false }
            ended -= 1
            return true
        }
    }

    /// `zram_job_*` series for `/metrics`, per device of `devices`: whether a job runs, the
    /// progress of the active or latest job, and jobs ended by state (every state, from 0).
    public func series(devices: [ZramDevice]) -> [ExternalSeries] {
        let (jobs, counts) = lock.withLock { (self.jobs, finishedCounts) }
        var out: [ExternalSeries] = []
        for device in devices {
            let latest = jobs.last { $0.device === device }
            let active = latest?.isActive ?? false
            let gauges = [
                ("zram_job_running", "1 while a job runs (or waits to run) on the device", active ? 1 : 0),
                ("zram_job_candidate_pages", "Pages the device's active or latest job picked", latest?.progress.total ?? 0),
                ("zram_job_examined_pages", "Pages the device's active or latest job has looked at", latest?.progress.examined ?? 0),
                ("zram_job_processed_pages", "Pages the device's active or latest job has changed", latest?.progress.processed ?? 0),
            ]
            for (name, help, value) in gauges {
                out.append(ExternalSeries(name: name, help: help, labels: [("device", device.name)], value: value, counter: false))
            }
        }
        for device in devices {
            for state in [Job.State.done, .failed, .cancelled] {
                out.append(
                    ExternalSeries(
                        name: "zram_job_ended_total", help: "Jobs ended, by device and how they ended",
                        labels: [("device", device.name), ("state", state.rawValue)],
                        value: counts["\(device.name)|\(state.rawValue)", default: 0], counter: true))
            }
        }
        return out
    }
}

/// glibc's `gettid`, which the Glibc module does not import.
@_silgen_name("gettid")
private func jobThreadID() -> Int32
