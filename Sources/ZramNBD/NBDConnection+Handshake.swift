import Glibc
import ZramDevice

/// Why a handshake ended without transmission.
enum HandshakeEnd: Error {
    /// The client left or timed out.
    case closed
    /// The client broke the protocol (bad magic, unknown flags, absurd length).
    case violation
}

/// The fixed newstyle handshake, blocking on this connection's own thread with a timeout per step.
extension NBDConnection {
    /// The longest option data accepted; names are at most 4 KiB by the protocol.
    static let maxOptionBytes = 64 << 10

    var transmissionFlags: NBDTransmissionFlags {
        [.hasFlags, .sendFlush, .sendFUA, .sendTrim, .sendWriteZeroes, .canMultiConn]
    }

    /// Runs option haggling; true when the client chose an export and transmission begins.
    func handshake() throws(HandshakeEnd) -> Bool {
        var hello = MessageWriter()
        hello.u64(NBD.nbdMagic)
        hello.u64(NBD.optionMagic)
        hello.u16(NBD.flagFixedNewstyle | NBD.flagNoZeroes)
        try sendAll(hello.bytes)
        var flagsReader = MessageReader(try receiveExactly(4))
        let clientFlags = flagsReader.u32()!
        guard clientFlags & ~NBD.clientFlagsKnown == 0 else { throw .violation }
        let noZeroes = clientFlags & UInt32(NBD.flagNoZeroes) != 0
        while true {
            var head = MessageReader(try receiveExactly(16))
            let magic = UInt64(head.u32()!) << 32 | UInt64(head.u32()!)
            let option = head.u32()!
            let length = Int(head.u32()!)
            guard magic == NBD.optionMagic, length <= Self.maxOptionBytes else { throw .violation }
            let data = try receiveExactly(length)
            switch NBDOption(rawValue: option) {
            case .exportName:
                let name = String(decoding: data, as: UTF8.self)
                guard let device = server.device(named: name), device.diskSize > 0 else { return false }
                choose(device, name: name)
                var reply = MessageWriter()
                reply.u64(UInt64(device.diskSize))
                reply.u16(transmissionFlags.rawValue)
                if !noZeroes { reply.append(repeatElement(0, count: 124)) }
                try sendAll(reply.bytes)
                return true
            case .abort:
                try? sendReply(option, .ack)
                return false
            case .list:
                guard data.isEmpty else { try sendReply(option, .errInvalid, "LIST carries no data"); continue }
                // Only initialised devices are exports: an uninitialised one has no size yet.
                for device in server.registry.all where device.diskSize > 0 {
                    var entry = MessageWriter()
                    entry.u32(UInt32(device.name.utf8.count))
                    entry.append(device.name.utf8)
                    try sendReply(option, .server, entry.bytes)
                }
                try sendReply(option, .ack)
            case .info, .go:
                if try exportInfo(option, data), option == NBDOption.go.rawValue { return true }
            case .structuredReply:
                guard data.isEmpty else { try sendReply(option, .errInvalid, "STRUCTURED_REPLY carries no data"); continue }
                structuredReplies = true
                try sendReply(option, .ack)
            case .listMetaContext, .setMetaContext:
                try metaContext(option, data)
            case .startTLS:
                try sendReply(option, .errUnsupported, "TLS is not offered; use a private network or a tunnel")
            case nil:
                try sendReply(option, .errUnsupported, "option \(option) is not supported")
            }
        }
    }

    private func choose(_ device: ZramDevice, name: String) {
        self.device = device
        exportName = device.name
    }

    /// INFO and GO: the export's size, flags and block sizes, then ACK; false when refused.
    private func exportInfo(_ option: UInt32, _ data: [UInt8]) throws(HandshakeEnd) -> Bool {
        var reader = MessageReader(data)
        guard let nameLength = reader.u32(), let nameBytes = reader.take(Int(nameLength)),
            let count = reader.u16(), reader.remaining == Int(count) * 2
        else {
            try sendReply(option, .errInvalid, "malformed INFO/GO request")
            return false
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard let device = server.device(named: name) else {
            try sendReply(option, .errUnknown, "no export named \"\(name)\"; NBD_OPT_LIST shows them")
            return false
        }
        let size = device.diskSize
        guard size > 0 else {
            try sendReply(option, .errUnknown, "\(device.name) is not initialised: write its disksize first")
            return false
        }
        var export = MessageWriter()
        export.u16(NBDInfo.export.rawValue)
        export.u64(UInt64(size))
        export.u16(transmissionFlags.rawValue)
        try sendReply(option, .info, export.bytes)
        var blocks = MessageWriter()
        blocks.u16(NBDInfo.blockSize.rawValue)
        blocks.u32(512)
        blocks.u32(UInt32(device.pageSize))
        blocks.u32(UInt32(server.config.maxPayloadBytes))
        try sendReply(option, .info, blocks.bytes)
        var named = MessageWriter()
        named.u16(NBDInfo.name.rawValue)
        named.append(device.name.utf8)
        try sendReply(option, .info, named.bytes)
        try sendReply(option, .ack)
        if option == NBDOption.go.rawValue { choose(device, name: name) }
        return true
    }

    /// LIST_META_CONTEXT and SET_META_CONTEXT: the one context served is `base:allocation`.
    private func metaContext(_ option: UInt32, _ data: [UInt8]) throws(HandshakeEnd) {
        let isSet = option == NBDOption.setMetaContext.rawValue
        guard structuredReplies || !isSet else {
            try sendReply(option, .errInvalid, "negotiate STRUCTURED_REPLY before SET_META_CONTEXT")
            return
        }
        var reader = MessageReader(data)
        guard let nameLength = reader.u32(), let nameBytes = reader.take(Int(nameLength)), let count = reader.u32() else {
            try sendReply(option, .errInvalid, "malformed meta context request")
            return
        }
        var queries: [String] = []
        for _ in 0..<count {
            guard let length = reader.u32(), let query = reader.take(Int(length)) else {
                try sendReply(option, .errInvalid, "malformed meta context query")
                return
            }
            queries.append(String(decoding: query, as: UTF8.self))
        }
        guard reader.remaining == 0 else {
            try sendReply(option, .errInvalid, "trailing bytes after the meta context queries")
            return
        }
        let name = String(decoding: nameBytes, as: UTF8.self)
        guard server.device(named: name) != nil else {
            try sendReply(option, .errUnknown, "no export named \"\(name)\"")
            return
        }
        let wanted = queries.contains("base:allocation") || (!isSet && (queries.isEmpty || queries.contains("base:")))
        if isSet { allocationContext = wanted }
        if wanted {
            var context = MessageWriter()
            context.u32(isSet ? 1 : 0)
            context.append("base:allocation".utf8)
            try sendReply(option, .metaContext, context.bytes)
        }
        try sendReply(option, .ack)
    }

    private func sendReply(_ option: UInt32, _ type: NBDOptionReply, _ data: [UInt8] = []) throws(HandshakeEnd) {
        var reply = MessageWriter()
        reply.u64(NBD.optionReplyMagic)
        reply.u32(option)
        reply.u32(type.rawValue)
        reply.u32(UInt32(data.count))
        reply.append(data)
        try sendAll(reply.bytes)
    }

    private func sendReply(_ option: UInt32, _ type: NBDOptionReply, _ message: String) throws(HandshakeEnd) {
        try sendReply(option, type, Array(message.utf8))
    }

    // MARK: blocking I/O with a timeout, for the handshake only

    private func waitFor(_ events: Int32) throws(HandshakeEnd) {
        var fds = pollfd(fd: fd, events: Int16(events), revents: 0)
        while true {
            let n = poll(&fds, 1, server.config.handshakeTimeoutSeconds * 1000)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .closed }
            return
        }
    }

    func receiveExactly(_ count: Int) throws(HandshakeEnd) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = bytes.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n > 0 { got += n; continue }
            if n == 0 { throw .closed }
            if errno == EINTR { continue }
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw .closed }
            try waitFor(POLLIN)
        }
        return bytes
    }

    func sendAll(_ bytes: [UInt8]) throws(HandshakeEnd) {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
            if n > 0 { sent += n; continue }
            if n < 0 && errno == EINTR { continue }
            guard n < 0, errno == EAGAIN || errno == EWOULDBLOCK else { throw .closed }
            try waitFor(POLLOUT)
        }
    }
}
