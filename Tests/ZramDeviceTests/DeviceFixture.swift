import Glibc
import ZComp
import ZramDevice
import ZramTestSupport
import Testing
import Foundation

/// A device on a fresh data directory, with helpers to move corpus pages in and out.
struct DeviceFixture {
    let device: ZramDevice
    let dataDir: String

    init(
        disksize: String = "64M", algorithm: String = "lz4", secondary: [String] = [],
        backing: String? = nil, configure: (ZramDevice) throws -> Void = { _ in },
        makeCodec: CodecFactory? = nil
    ) throws {
        var template = "/tmp/zramd-test-XXXXXX".utf8CString
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        dataDir = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        if let makeCodec {
            device = ZramDevice(id: 0, dataDir: dataDir, makeCodec: makeCodec)
        } else {
            device = ZramDevice(id: 0, dataDir: dataDir)
        }
        try device.writeAttribute("comp_algorithm", algorithm)
        for (i, name) in secondary.enumerated() {
            try device.writeAttribute("recomp_algorithm", "algo=\(name) priority=\(i + 1)")
        }
        if let backing { try device.writeAttribute("backing_dev", backing) }
        try configure(device)
        try device.writeAttribute("disksize", disksize)
    }

    /// Writes corpus page `page` into slot `slot`.
    func put(_ slot: Int, corpusPage page: Int) throws {
        try Corpus.shared.withPage(page) { try device.write(slot, $0) }
    }

    /// Writes raw bytes into slot `slot`.
    func put(_ slot: Int, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try device.write(slot, $0) }
    }

    /// Reads slot `slot`; nil when it holds nothing.
    func get(_ slot: Int) throws -> [UInt8]? {
        var page = [UInt8](repeating: 0, count: device.pageSize)
        let found = try page.withUnsafeMutableBytes { try device.read(slot, into: $0) }
        return found ? page : nil
    }

    /// The numbers of `mm_stat` as `cat` shows them.
    func mmStat() throws -> [Int] {
        try device.readAttribute("mm_stat").split(separator: " ", omittingEmptySubsequences: true)
            .map { Int($0.trimmingCharacters(in: .whitespacesAndNewlines))! }
    }

    func remove() {
        device.reset()
        _ = system("rm -rf '\(dataDir)'")
    }
}

/// Expects `body` to fail with `errno`.
func expectErrno(_ errno: Errno, _ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        try body()
        Issue.record("expected \(errno), got success", sourceLocation: sourceLocation)
    } catch let error as ZramError {
        #expect(error.errno == errno, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(errno), got \(error)", sourceLocation: sourceLocation)
    }
}
