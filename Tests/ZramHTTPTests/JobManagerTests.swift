import Foundation
import Glibc
import Testing
import ZramDevice
@testable import ZramHTTP

/// JobManager (Jobs.swift): states, the bounded history and the `zram_job_*` series.
@Suite struct JobManagerTests {
    /// An initialised 1 MiB device on a fresh data directory.
    func device(_ id: Int = 0) throws -> ZramDevice {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("zramd-jobs-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let device = ZramDevice(id: id, dataDir: dir)
        try device.writeAttribute("disksize", "1M")
        return device
    }

    func waitForEnd(_ job: Job) throws {
        let deadline = Date().addingTimeInterval(30)
        while job.isActive {
            try #require(Date() < deadline, "job \(job.id) never ended")
            usleep(1000)
        }
    }

    @Test func aJobRunsToDoneAndReportsItsOutcome() throws {
        let manager = JobManager()
        let device = try device()
        // A same-filled page (never idle) and a real one.
        try Array(repeating: UInt8(7), count: 4096).withUnsafeBytes { try device.write(3, $0) }
        var page = [UInt8](repeating: 0, count: 4096)
        for i in 0..<4096 { page[i] = UInt8(truncatingIfNeeded: i * 31 + i / 7) }
        try page.withUnsafeBytes { try device.write(5, $0) }
        let job = try manager.start(device.prepareJob("idle", "all"), on: device)
        try waitForEnd(job)
        #expect(job.state == .done)
        let json = job.json()
        #expect(json["result"] as? Int == 1 && json["operation"] as? String == "idle" && json["error"] is NSNull)
        #expect((json["pages"] as? [String: Int])?["total"] == 256)
        #expect(manager.all.map(\.id) == [1])
    }

    @Test func endedJobsBeyondTheLimitAreDropped() throws {
        let manager = JobManager()
        let device = try device()
        var ids: [Int] = []
        for _ in 0..<(JobManager.historyLimit + 5) {
            let job = try manager.start(device.prepareJob("compact", "1"), on: device)
            try waitForEnd(job)
            ids.append(job.id)
        }
        // The trim runs after the job ends, on its thread: give it a moment.
        let deadline = Date().addingTimeInterval(10)
        while manager.all.count > JobManager.historyLimit, Date() < deadline { usleep(1000) }
        #expect(manager.all.map(\.id) == Array(ids.suffix(JobManager.historyLimit)))
        #expect(manager.job(ids[0]) == nil && manager.job(ids.last!) != nil)
        #expect(manager.cancelAll(waiting: 1))
    }

    @Test func seriesCoverEveryDeviceAndState() throws {
        let manager = JobManager()
        let first = try device(0), second = try device(1)
        let job = try manager.start(first.prepareJob("compact", "1"), on: first)
        try waitForEnd(job)
        let deadline = Date().addingTimeInterval(10)
        var series: [ExternalSeries] = []
        repeat {
            series = manager.series(devices: [first, second])
        } while !series.contains(where: { $0.name == "zram_job_ended_total" && $0.value == 1 }) && Date() < deadline
        let ended = series.filter { $0.name == "zram_job_ended_total" }
        #expect(ended.count == 6)
        #expect(ended.filter { $0.value == 1 }.map { $0.labels.map(\.1) } == [["zram0", "done"]])
        #expect(series.filter { $0.name == "zram_job_running" }.allSatisfy { $0.value == 0 })
        #expect(series.first { $0.name == "zram_job_candidate_pages" && $0.labels[0].1 == "zram0" }?.value == 1)
    }
}
