import ZSync
import Glibc
import Testing
import ZramDevice
import ZramNBD
import ZramTestSupport

/// A blocking NBD client over a raw socket: enough protocol to drive the server from threads.
struct RawNBDClient {
    let fd: Int32

    init(port: UInt16) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        precondition(rc == 0, "connect: \(errno)")
    }

    func send(_ bytes: [UInt8]) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }

    /// Exactly `count` bytes, or nil when the server closed first.
    func receive(_ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            guard n > 0 else { return nil }
            got += n
        }
        return bytes
    }

    static func be(_ value: UInt64, _ width: Int) -> [UInt8] { (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * (width - 1 - $0))) } }

    /// Handshake then NBD_OPT_GO on `name`; false when refused.
    func go(_ name: String) -> Bool {
        guard receive(18) != nil else { return false }
        send(Self.be(3, 4))
        let data = Self.be(UInt64(name.utf8.count), 4) + Array(name.utf8) + Self.be(0, 2)
        send(Array("IHAVEOPT".utf8) + Self.be(7, 4) + Self.be(UInt64(data.count), 4) + data)
        while let head = receive(20) {
            let type = head[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let length = Int(head[16..<20].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard receive(length) != nil else { return false }
            if type == 1 { return true }
            if type & 0x8000_0000 != 0 { return false }
        }
        return false
    }

    func request(_ type: UInt16, cookie: UInt64, offset: Int, length: Int, payload: [UInt8] = [], magic: UInt64 = 0x2560_9513) {
        send(
            Self.be(magic, 4) + Self.be(0, 2) + Self.be(UInt64(type), 2) + Self.be(cookie, 8) + Self.be(UInt64(offset), 8)
                + Self.be(UInt64(length), 4) + payload)
    }

    /// A simple reply: (error, cookie), or nil when closed.
    func reply() -> (UInt32, UInt64)? {
        guard let r = receive(16) else { return nil }
        return (r[4..<8].reduce(0) { $0 << 8 | UInt32($1) }, r[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }

    func close() { _ = Glibc.close(fd) }
}

/// The server under ThreadSanitizer: pipelined requests from several connections, out-of-order
/// completion on the worker pool, a protocol violation on the side, and a clean stop.
@Suite struct ConcurrentNBDServerTests {
    @Test func pipelinedConnectionsReadTheirOwnWritesWhileAViolatorIsClosed() throws {
        let registry = DeviceRegistry(dataDir: "/tmp")
        try registry.hotAdd().writeAttribute("disksize", "8M")
        let server = try NBDServer(config: NBDServerConfig(host: "127.0.0.1", port: 0, workers: 2), registry: registry)
        defer { server.stop() }
        let done = Counter()
        let failures = Counter()
        for t in 0..<4 {
            PThread.detach {
                let client = RawNBDClient(port: server.port)
                defer { client.close(); done.increment() }
                guard client.go("zram0") else { failures.increment(); return }
                let pages = 32
                // 32 writes in flight (a mix of whole and partial pages), then 32 reads in flight.
                for i in 0..<pages {
                    let fill = UInt8(t * 40 + i)
                    let offset = (t * pages + i) * 4096
                    if i % 3 == 0 {
                        client.request(1, cookie: UInt64(i), offset: offset + 512, length: 1024, payload: [UInt8](repeating: fill, count: 1024))
                    } else {
                        client.request(1, cookie: UInt64(i), offset: offset, length: 4096, payload: [UInt8](repeating: fill, count: 4096))
                    }
                }
                var seen = Set<UInt64>()
                for _ in 0..<pages {
                    guard let (error, cookie) = client.reply(), error == 0 else { failures.increment(); return }
                    seen.insert(cookie)
                }
                if seen.count != pages { failures.increment() }
                for i in 0..<pages { client.request(0, cookie: UInt64(i), offset: (t * pages + i) * 4096, length: 4096) }
                for _ in 0..<pages {
                    guard let (error, cookie) = client.reply(), error == 0, let data = client.receive(4096) else {
                        failures.increment()
                        return
                    }
                    let fill = UInt8(t * 40 + Int(cookie))
                    let expected =
                        cookie % 3 == 0
                        ? [UInt8](repeating: 0, count: 512) + [UInt8](repeating: fill, count: 1024) + [UInt8](repeating: 0, count: 2560)
                        : [UInt8](repeating: fill, count: 4096)
                    if data != expected { failures.increment() }
                }
            }
        }
        let violator = RawNBDClient(port: server.port)
        #expect(violator.go("zram0"))
        violator.request(0, cookie: 1, offset: 0, length: 4096, magic: 0x1234_5678)
        #expect(violator.reply() == nil, "a bad magic closes the connection")
        violator.close()
        while done.value < 4 { usleep(1000) }
        #expect(failures.value == 0)
        #expect(server.metrics.protocolViolations == 1)
        #expect(server.metrics.commands.first { $0.command == "write" }?.requests == 128)
        let refused = RawNBDClient(port: server.port)
        #expect(!refused.go("zram5"), "an unknown export is refused")
        refused.close()
    }
}

/// Requests over `splitBytes` run in parts on several threads: the reply waits for every part,
/// carries the first error, and a refused write leaves nothing half-counted.
@Suite struct ConcurrentSplitRequestTests {
    @Test func anUnalignedOneMiBWriteReadsBackAndAFullDeviceAnswersENOMEM() throws {
        let registry = DeviceRegistry(dataDir: "/tmp")
        let device = registry.hotAdd()
        try device.writeAttribute("disksize", "16M")
        let server = try NBDServer(config: NBDServerConfig(host: "127.0.0.1", port: 0, workers: 2), registry: registry)
        defer { server.stop() }
        let client = RawNBDClient(port: server.port)
        defer { client.close() }
        #expect(client.go("zram0"))
        var rng = SplitMix64(seed: 9)
        let length = (1 << 20) + 1000
        let data = (0..<length).map { i in i % 4096 < 2048 ? UInt8(truncatingIfNeeded: rng.next()) : UInt8(i % 7) }
        client.request(1, cookie: 1, offset: 3000, length: length, payload: data)
        #expect(client.reply()! == (0, 1))
        client.request(0, cookie: 2, offset: 3000, length: length)
        #expect(client.reply()! == (0, 2))
        #expect(client.receive(length) == data)

        // 8 MiB of random bytes into a device limited to 1 MiB: every part fails, one ENOMEM reply.
        try device.writeAttribute("mem_limit", "1M")
        let random = (0..<(8 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        client.request(1, cookie: 3, offset: 4 << 20, length: random.count, payload: random)
        #expect(client.reply()! == (12, 3), "NBD_ENOMEM")
        #expect(device.ioStat.failedWrites > 0)
        client.request(0, cookie: 4, offset: 3000, length: 4096)
        #expect(client.reply()! == (0, 4), "the connection carries on")
        #expect(client.receive(4096) == Array(data[0..<4096]))
    }
}
