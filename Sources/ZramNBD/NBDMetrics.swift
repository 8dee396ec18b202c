import Synchronization

/// What the NBD front end counts: requests, payload bytes and errors per command, connections
/// open, and connections closed for a protocol violation. Lock-free; read at every scrape.
public final class NBDMetrics: Sendable {
    /// One command's counters.
    public struct CommandCounts: Sendable, Equatable {
        /// The command's name as `/metrics` labels it (`read`, `write`, `flush`, `trim`, `write_zeroes`, `block_status`, `disc`, `cache`).
        public let command: String
        public let requests: Int
        /// Bytes read or written (READ, WRITE) or covered (TRIM, WRITE_ZEROES, BLOCK_STATUS).
        public let bytes: Int
        /// Requests answered with an error.
        public let errors: Int
    }

    private final class Counter: Sendable {
        let value = Atomic<Int>(0)
    }

    private let requests: [Counter]
    private let bytes: [Counter]
    private let errors: [Counter]
    let openConnections = Atomic<Int>(0)
    let protocolErrors = Atomic<Int>(0)
    let refusedConnections = Atomic<Int>(0)

    init() {
        let n = Int(NBDCommand.allCases.map(\.rawValue).max()!) + 1
        requests = (0..<n).map { _ in Counter() }
        bytes = (0..<n).map { _ in Counter() }
        errors = (0..<n).map { _ in Counter() }
    }

    func count(_ command: NBDCommand, bytes length: Int, failed: Bool) {
        let i = Int(command.rawValue)
        requests[i].value.add(1, ordering: .relaxed)
        bytes[i].value.add(length, ordering: .relaxed)
        if failed { errors[i].value.add(1, ordering: .relaxed) }
    }

    /// Every command's counters as of now.
    public var commands: [CommandCounts] {
        NBDCommand.allCases.map { c in
            let i = Int(c.rawValue)
            return CommandCounts(
                command: c.label, requests: requests[i].value.load(ordering: .relaxed),
                bytes: bytes[i].value.load(ordering: .relaxed), errors: errors[i].value.load(ordering: .relaxed))
        }
    }

    /// Connections in the handshake or transmission phase now.
    public var connections: Int { openConnections.load(ordering: .relaxed) }
    /// Connections closed because the client broke the protocol (bad magic, absurd length, unknown flags).
    public var protocolViolations: Int { protocolErrors.load(ordering: .relaxed) }
    /// Connections refused at accept because the limit was reached.
    public var refused: Int { refusedConnections.load(ordering: .relaxed) }
}
