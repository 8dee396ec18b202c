import Synchronization

/// Progress and cancellation of one post-processing run, shared between the run and
/// whoever watches it (the jobs API).
///
/// The run publishes counters as it goes and looks at `isCancelled` between batches; a
/// cancelled run stops there, clears every post-processing mark it set and returns what
/// it had done, so every slot is left as consistent as after a run that ended normally.
public final class JobProgress: Sendable {
    private let running = Atomic<Bool>(false)
    private let cancelled = Atomic<Bool>(false)
    private let totalPages = Atomic<Int>(0)
    private let examinedPages = Atomic<Int>(0)
    private let processedPages = Atomic<Int>(0)

    public init() {}

    /// True once the run holds the device's post-processing lock and knows its candidates.
    public var isRunning: Bool { running.load(ordering: .acquiring) }
    /// True once `cancel` was called.
    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }
    /// Pages the run picked (slots, for `idle`; 1 for `compact`).
    public var total: Int { totalPages.load(ordering: .relaxed) }
    /// Candidates looked at so far.
    public var examined: Int { examinedPages.load(ordering: .relaxed) }
    /// Candidates the run changed (written back, recompressed, marked idle).
    public var processed: Int { processedPages.load(ordering: .relaxed) }

    /// Asks the run to stop at its next batch boundary.
    public func cancel() { cancelled.store(true, ordering: .releasing) }

    /// The run has started, with `total` candidates.
    func begin(total: Int) {
        totalPages.store(total, ordering: .relaxed)
        running.store(true, ordering: .releasing)
    }

    /// Counters so far (absolute values).
    func update(examined: Int, processed: Int) {
        examinedPages.store(examined, ordering: .relaxed)
        processedPages.store(processed, ordering: .relaxed)
    }
}

/// A post-processing request parsed and checked now, to run later as a job.
public struct PreparedJob: Sendable {
    /// The attribute: `writeback`, `recompress`, `compact` or `idle`.
    public let operation: String
    /// The body as given (what the job was asked).
    public let body: String
    let work: @Sendable (ZramDevice, JobProgress) throws(ZramError) -> Int
}

extension ZramDevice {
    /// The attributes that can run as jobs.
    static let jobOperations: Set<String> = ["writeback", "recompress", "compact", "idle"]

    /// Parses `body` for `operation` and checks what can be checked before the run, so that
    /// bad input is refused at once (and changes nothing) rather than as a failed job.
    /// - Throws: ENOENT for an operation that is not post-processing, the attribute's own
    ///   parse errors, EINVAL for an uninitialised device, ENODEV for `writeback` without a
    ///   backing device, ERANGE for slots outside the disk, EINVAL for `recompress` without
    ///   a `recomp_algorithm`.
    public func prepareJob(_ operation: String, _ body: String) throws(ZramError) -> PreparedJob {
        try checkNotRemoved()
        let work: @Sendable (ZramDevice, JobProgress) throws(ZramError) -> Int
        switch operation {
        case "writeback":
            let request = try Self.parseWriteback(body)
            _ = try requireLive("writeback") { live throws(ZramError) in try checkWriteback(live, request) }
            work = { device, progress throws(ZramError) in try device.writeback(request, progress: progress) }
        case "recompress":
            let request = try Self.parseRecompress(body)
            try requireLive("recompress") { live throws(ZramError) in
                guard (1...3).contains(where: { live.streams[$0] != nil }) else {
                    throw ZramError(.EINVAL, "no recomp_algorithm is set for \(name)")
                }
            }
            work = { device, progress throws(ZramError) in try device.recompress(request, progress: progress) }
        case "idle":
            let text = AttributeParsing.trimmed(body)
            let age = text == "all" ? nil : try AttributeParsing.unsigned(text, "idle age")
            try requireLive("idle") { _ in }
            work = { device, progress throws(ZramError) in try device.markIdle(olderThan: age, progress: progress) }
        case "compact":
            try requireLive("compact") { _ in }
            work = { device, progress throws(ZramError) in try device.compact(progress: progress) }
        default:
            throw ZramError(.ENOENT, "\(operation) cannot run as a job (only \(Self.jobOperations.sorted().joined(separator: ", ")))")
        }
        return PreparedJob(operation: operation, body: body, work: work)
    }

    /// Runs a prepared job on the calling thread, reporting to `progress`.
    /// - Returns: pages processed (chunks freed, for `compact`).
    public func run(_ job: PreparedJob, progress: JobProgress) throws(ZramError) -> Int {
        try job.work(self, progress)
    }

    /// True when `progress` asks the run to stop (checked between batches).
    @inline(__always)
    func stopRequested(_ progress: JobProgress?) -> Bool {
        progress?.isCancelled ?? false
    }
}
