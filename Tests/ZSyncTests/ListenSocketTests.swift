import Glibc
import Testing
import ZSync

/// The listening socket the HTTP and NBD servers open.
struct ListenSocketTests {
    @Test func portZeroBindsAPortAndABoundPortIsRefused() throws {
        let first = try ListenSocket.open(host: "127.0.0.1", port: 0, backlog: 4, nonBlocking: true)
        defer { close(first.fd) }
        #expect(first.port != 0 && !first.ipv6)
        #expect(fcntl(first.fd, F_GETFL) & O_NONBLOCK != 0)
        #expect(fcntl(first.fd, F_GETFD) & FD_CLOEXEC != 0)
        #expect(throws: ListenError.socket(call: "bind", errno: EADDRINUSE)) {
            _ = try ListenSocket.open(host: "127.0.0.1", port: first.port, backlog: 4, nonBlocking: false)
        }
    }

    @Test func onlyAddressLiteralsAreAccepted() throws {
        #expect(throws: ListenError.invalidAddress("localhost")) {
            _ = try ListenSocket.open(host: "localhost", port: 0, backlog: 4, nonBlocking: false)
        }
        let v6 = try ListenSocket.open(host: "::1", port: 0, backlog: 4, nonBlocking: false)
        defer { close(v6.fd) }
        #expect(v6.ipv6 && v6.port != 0)
        #expect(fcntl(v6.fd, F_GETFL) & O_NONBLOCK == 0)
    }
}
