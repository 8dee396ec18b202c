import Glibc

/// Why a listening socket could not be opened.
public enum ListenError: Error, Equatable, CustomStringConvertible {
    /// `host` is not an IPv4 or IPv6 literal.
    case invalidAddress(String)
    /// A socket call failed; `errno` attached.
    case socket(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidAddress(let host): "\(host) is not an IPv4 or IPv6 address"
        case .socket(let call, let errno): "\(call): \(String(cString: strerror(errno)))"
        }
    }
}

/// The listening sockets of the HTTP and NBD servers, opened the one way.
package enum ListenSocket {
    /// A bound, listening, close-on-exec socket on `host` (an IPv4 or IPv6 literal) and `port`
    /// (0: the kernel picks; the port bound is returned).
    package static func open(host: String, port: UInt16, backlog: Int, nonBlocking: Bool) throws(ListenError) -> (
        fd: Int32, port: UInt16, ipv6: Bool
    ) {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let ipv6: Bool
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            ipv6 = false
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            ipv6 = true
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            throw .invalidAddress(host)
        }
        let type = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, type, 0)
        guard fd >= 0 else { throw .socket(call: "socket", errno: errno) }
        func fail(_ call: String) -> ListenError {
            let error = ListenError.socket(call: call, errno: errno)
            close(fd)
            return error
        }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if ipv6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size)) }
        let bound =
            ipv6
            ? withUnsafePointer(to: &v6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            : withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        guard bound == 0 else { throw fail("bind") }
        guard listen(fd, Int32(clamping: backlog)) == 0 else { throw fail("listen") }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw fail("getsockname") }
        // sin_port and sin6_port sit at the same offset.
        let actual = withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: 2, as: UInt16.self)) }
        return (fd, actual, ipv6)
    }
}
