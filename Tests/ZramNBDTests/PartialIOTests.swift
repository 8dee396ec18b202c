import ZSync
import Glibc
import Testing
import ZramDevice
import ZramTestSupport

/// The device's partial-page and range APIs that the NBD front end is built on.
@Suite struct PartialIOTests {
    static func device(_ disksize: String = "1M") throws -> ZramDevice {
        let device = ZramDevice(id: 0, dataDir: "/tmp")
        try device.writeAttribute("disksize", disksize)
        return device
    }

    static func page(_ device: ZramDevice, _ index: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0xee, count: device.pageSize)
        let stored = try bytes.withUnsafeMutableBytes { try device.read(index, into: $0) }
        return stored ? bytes : [UInt8](repeating: 0, count: device.pageSize)
    }

    @Test func partialWriteMergesIntoTheStoredPageAndZeroFillsAnEmptyOne() throws {
        let device = try Self.device()
        let original = Corpus.shared.page(7)
        try original.withUnsafeBytes { try device.write(3, $0) }
        let patch = [UInt8](repeating: 0x5a, count: 700)
        try patch.withUnsafeBytes { try device.writePartial(3, offset: 1000, length: 700, $0) }
        var expected = original
        expected.replaceSubrange(1000..<1700, with: patch)
        #expect(try Self.page(device, 3) == expected)

        try patch.withUnsafeBytes { try device.writePartial(9, offset: 4096 - 700, length: 700, $0) }
        #expect(try Self.page(device, 9) == [UInt8](repeating: 0, count: 4096 - 700) + patch)

        var part = [UInt8](repeating: 0, count: 300)
        try part.withUnsafeMutableBytes { try device.readPartial(3, offset: 900, into: $0) }
        #expect(part == Array(expected[900..<1200]))
        try part.withUnsafeMutableBytes { try device.readPartial(20, offset: 0, into: $0) }
        #expect(part == [UInt8](repeating: 0, count: 300), "an empty slot reads as zeros")

        try device.writePartial(3, offset: 0, length: 4096, nil)
        #expect(try device.allocationRuns(3..<4, maxRuns: 4) == [AllocationRun(pages: 1, zero: true)], "a zeroed page is a hole")
    }

    @Test func badRangesAreRefusedCountedAndChangeNothing() throws {
        let device = try Self.device()
        let original = Corpus.shared.page(11)
        try original.withUnsafeBytes { try device.write(1, $0) }
        let bytes = [UInt8](repeating: 1, count: 100)
        expectErrno(.EINVAL) { try bytes.withUnsafeBytes { try device.writePartial(1, offset: 4000, length: 100, $0) } }
        expectErrno(.EINVAL) { try bytes.withUnsafeBytes { try device.writePartial(1, offset: -1, length: 100, $0) } }
        expectErrno(.ERANGE) { try bytes.withUnsafeBytes { try device.writePartial(256, offset: 0, length: 100, $0) } }
        expectErrno(.ERANGE) { try device.zeroPages(250..<257) }
        expectErrno(.ERANGE) { try device.discardPages(-1..<3) }
        #expect(try Self.page(device, 1) == original)
        #expect(try Self.page(device, 250) == [UInt8](repeating: 0, count: 4096))
        #expect(device.ioStat.invalidIO == 5)
    }

    @Test func zeroAndDiscardRangesKeepTheStatisticsRight() throws {
        let device = try Self.device()
        for i in 0..<8 { try Corpus.shared.page(100 + i).withUnsafeBytes { try device.write(i, $0) } }
        try device.zeroPages(2..<4)
        #expect(device.mmStat.samePages == 2)
        #expect(
            try device.allocationRuns(0..<8, maxRuns: 10) == [
                AllocationRun(pages: 2, zero: false), AllocationRun(pages: 2, zero: true), AllocationRun(pages: 4, zero: false),
            ])
        #expect(try device.allocationRuns(0..<8, maxRuns: 2).count == 2)
        #expect(try device.discardPages(0..<6) == 6)
        #expect(device.ioStat.notifyFree == 6)
        #expect(device.mmStat.samePages == 0)
        #expect(device.mmStat.origDataSize == 2 * 4096)
        #expect(
            try device.allocationRuns(0..<256, maxRuns: 10) == [
                AllocationRun(pages: 6, zero: true), AllocationRun(pages: 2, zero: false), AllocationRun(pages: 248, zero: true),
            ])
    }
}

/// Partial writes from many threads to the sectors of one page lose nothing (the slot lock spans the whole cycle).
@Suite struct ConcurrentPartialIOTests {
    @Test func sectorsOfOnePageWrittenFromEightThreadsAllSurvive() throws {
        let device = try PartialIOTests.device()
        let rounds = 200
        let done = Counter()
        for t in 0..<8 {
            PThread.detach {
                for round in 0..<rounds {
                    var sector = [UInt8](repeating: UInt8(t * 16 + round % 16), count: 512)
                    sector[0] = UInt8(round & 0xff)
                    try! sector.withUnsafeBytes { try device.writePartial(5, offset: t * 512, length: 512, $0) }
                }
                done.increment()
            }
        }
        while done.value < 8 { usleep(1000) }
        let page = try PartialIOTests.page(device, 5)
        for t in 0..<8 {
            let last = rounds - 1
            var expected = [UInt8](repeating: UInt8(t * 16 + last % 16), count: 512)
            expected[0] = UInt8(last & 0xff)
            #expect(Array(page[(t * 512)..<((t + 1) * 512)]) == expected, "sector \(t)")
        }
    }
}

func expectErrno(_ errno: Errno, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected \(errno.rawValue), got success", sourceLocation: sourceLocation)
    } catch let error as ZramError {
        #expect(error.errno == errno, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

/// A counter threads bump and the test polls.
final class Counter: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var count = 0
    init() { pthread_mutex_init(lock, nil) }
    deinit {
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }
    func increment() { pthread_mutex_lock(lock); count += 1; pthread_mutex_unlock(lock) }
    var value: Int { pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }; return count }
}
