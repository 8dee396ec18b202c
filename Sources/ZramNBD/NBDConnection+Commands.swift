import ZSync
import ZramDevice

/// The transmission phase's commands on the device: each builds one reply and hands it to `complete`.
extension NBDConnection {
    /// Runs one request (on the connection's thread or a worker) and sends its reply.
    func execute(_ request: NBDRequest, payload: IOBuffer?) {
        let command = NBDCommand(rawValue: request.type)
        if let command, command == .read || command == .write, Int(request.length) > server.config.splitBytes,
            request.flags.subtracting(command == .write ? .fua : []).isEmpty, device.pageSize <= server.config.splitBytes,
            Int(request.length) <= server.config.maxPayloadBytes
        {
            let size = device.diskSize
            if size > 0, request.offset <= UInt64(size), UInt64(request.length) <= UInt64(size) - request.offset {
                executeSplit(request, command: command, payload: payload)
                return
            }
        }
        let (reply, count) = run(request, command: command, payload: payload)
        server.metrics.count(command ?? .cache, bytes: Int(request.length), failed: reply.failed)
        complete(reply.buffer, count: count)
    }

    private struct Reply {
        var buffer: IOBuffer
        var failed: Bool
    }

    private func run(_ request: NBDRequest, command: NBDCommand?, payload: IOBuffer?) -> (Reply, Int) {
        guard let command, command != .cache else {
            return errorReply(request, .einval, "command \(request.type) is not supported")
        }
        let known: NBDCommandFlags =
            switch command {
            case .write, .trim: [.fua]
            case .writeZeroes: [.fua, .noHole]
            case .blockStatus: [.reqOne]
            default: []
            }
        guard request.flags.subtracting(known).isEmpty else {
            return errorReply(request, .einval, "flags \(request.flags.rawValue) are not valid for \(command.label)")
        }
        if command == .flush {
            // Every completed write is already in the device (memory or its backing store, which does not
            // outlive the process): nothing to make durable.
            return successReply(request)
        }
        let size = device.diskSize
        guard size > 0 else { return errorReply(request, .eio, "\(exportName) was reset or removed") }
        let offset = request.offset, length = Int(request.length)
        guard length > 0 else { return errorReply(request, .einval, "zero-length \(command.label)") }
        guard offset <= UInt64(size), UInt64(length) <= UInt64(size) - offset else {
            let errno: NBDError = command == .read || command == .blockStatus ? .einval : .enospc
            return errorReply(request, errno, "bytes \(offset)..<\(offset + UInt64(length)) are past the end (\(size))")
        }
        switch command {
        case .read:
            guard length <= server.config.maxPayloadBytes else {
                return errorReply(request, .einval, "a read is at most \(server.config.maxPayloadBytes) bytes")
            }
            return read(request, offset: Int(offset), length: length)
        case .write:
            return perform(request) { () throws(ZramError) in try write(Int(offset), payload!) }
        case .trim:
            return perform(request) { () throws(ZramError) in try trim(Int(offset), length) }
        case .writeZeroes:
            return perform(request) { () throws(ZramError) in try writeZeroes(Int(offset), length) }
        case .blockStatus:
            guard structuredReplies, allocationContext else {
                return errorReply(request, .einval, "BLOCK_STATUS needs structured replies and the base:allocation context")
            }
            return blockStatus(request, offset: Int(offset), length: length, size: size)
        case .flush, .disconnect, .cache:
            return successReply(request)
        }
    }

    // MARK: commands

    /// READ: whole pages are restored straight into the reply; pages cut by the range go through a page of scratch.
    private func read(_ request: NBDRequest, offset: Int, length: Int) -> (Reply, Int) {
        let header = structuredReplies ? NBD.structuredHeaderSize + 8 : NBD.simpleReplySize
        let buffer = IOBuffer(count: header + length)
        do throws(ZramError) {
            try readInto(buffer, at: header, offset: offset, length: length)
        } catch {
            return errorReply(request, nbdErrno(error), error.reason)
        }
        if structuredReplies {
            writeChunkHeader(buffer, request, type: .offsetData, length: 8 + length)
            buffer.base.storeBE(request.offset, at: NBD.structuredHeaderSize)
        } else {
            writeSimpleHeader(buffer, request, error: 0)
        }
        return (Reply(buffer: buffer, failed: false), buffer.count)
    }

    /// Restores `length` bytes from `offset` into `buffer` at `at`: whole pages straight in, cut pages through scratch.
    private func readInto(_ buffer: IOBuffer, at: Int, offset: Int, length: Int) throws(ZramError) {
        try forEachPage(offset, length) { (index, inPage, count, position) throws(ZramError) in
            let target = buffer.slice(at + position, count)
            if count == device.pageSize {
                if try !device.read(index, into: target) { target.initializeMemory(as: UInt8.self, repeating: 0) }
            } else {
                try device.readPartial(index, offset: inPage, into: target)
            }
        }
    }

    private func write(_ offset: Int, _ payload: IOBuffer) throws(ZramError) {
        try write(offset, payload, at: 0, length: payload.count)
    }

    /// Stores `length` bytes of `payload` from `at` at device offset `offset`.
    private func write(_ offset: Int, _ payload: IOBuffer, at: Int, length: Int) throws(ZramError) {
        try forEachPage(offset, length) { (index, inPage, count, position) throws(ZramError) in
            let source = UnsafeRawBufferPointer(payload.slice(at + position, count))
            if count == device.pageSize {
                try device.write(index, source)
            } else {
                try device.writePartial(index, offset: inPage, length: count, source)
            }
        }
    }

    /// TRIM frees the pages the range covers whole; the cut pages at its ends keep their bytes (zram's discard).
    private func trim(_ offset: Int, _ length: Int) throws(ZramError) {
        let page = device.pageSize
        let first = (offset + page - 1) / page, end = (offset + length) / page
        if first < end { try device.discardPages(first..<end) }
    }

    /// WRITE_ZEROES stores same-filled zero pages (no allocation) and zeroes the cut pages at its ends in place.
    private func writeZeroes(_ offset: Int, _ length: Int) throws(ZramError) {
        let page = device.pageSize
        let first = (offset + page - 1) / page, end = (offset + length) / page
        if first < end {
            try device.zeroPages(first..<end)
            if offset % page != 0 { try device.writePartial(first - 1, offset: offset % page, length: min(page - offset % page, length), nil) }
            if (offset + length) % page != 0 { try device.writePartial(end, offset: 0, length: (offset + length) % page, nil) }
        } else {
            // Inside one page, or across the boundary of two without covering either.
            try forEachPage(offset, length) { (index, inPage, count, _) throws(ZramError) in
                try device.writePartial(index, offset: inPage, length: count, nil)
            }
        }
    }

    /// BLOCK_STATUS for `base:allocation`: empty and zero-filled pages are holes that read as zeros.
    private func blockStatus(_ request: NBDRequest, offset: Int, length: Int, size: Int) -> (Reply, Int) {
        let page = device.pageSize
        let firstPage = offset / page, endPage = (offset + length + page - 1) / page
        let maxExtents = request.flags.contains(.reqOne) ? 1 : 1024
        let runs: [AllocationRun]
        do throws(ZramError) {
            runs = try device.allocationRuns(firstPage..<endPage, maxRuns: maxExtents)
        } catch {
            return errorReply(request, nbdErrno(error), error.reason)
        }
        var extents: [(length: UInt32, flags: UInt32)] = []
        var position = offset
        var pageCursor = firstPage
        for run in runs {
            pageCursor += run.pages
            let end = min(pageCursor * page, offset + length)
            guard end > position else { break }
            extents.append((UInt32(end - position), run.zero ? 3 : 0))
            position = end
        }
        let payloadLength = 4 + 8 * extents.count
        let buffer = IOBuffer(count: NBD.structuredHeaderSize + payloadLength)
        writeChunkHeader(buffer, request, type: .blockStatus, length: payloadLength)
        buffer.base.storeBE(UInt32(1), at: NBD.structuredHeaderSize)
        for (i, extent) in extents.enumerated() {
            buffer.base.storeBE(extent.length, at: NBD.structuredHeaderSize + 4 + 8 * i)
            buffer.base.storeBE(extent.flags, at: NBD.structuredHeaderSize + 8 + 8 * i)
        }
        return (Reply(buffer: buffer, failed: false), buffer.count)
    }

    /// A large READ or WRITE cut at page boundaries into parts of about `splitBytes`: the parts run on
    /// the worker pool and this thread at once, and whichever finishes last sends the one reply.
    private func executeSplit(_ request: NBDRequest, command: NBDCommand, payload: IOBuffer?) {
        let offset = Int(request.offset), length = Int(request.length)
        let page = device.pageSize
        let header = command == .write ? 0 : (structuredReplies ? NBD.structuredHeaderSize + 8 : NBD.simpleReplySize)
        let buffer = payload ?? IOBuffer(count: header + length)
        let step = server.config.splitBytes / page * page
        var cuts = [0]
        var next = (offset / page + step / page) * page - offset
        while next < length {
            cuts.append(next)
            next += step
        }
        cuts.append(length)
        let bounds = cuts
        let split = SplitRequest(parts: bounds.count - 1)
        let work: @Sendable (Int) -> Void = { [self] part in
            let from = bounds[part], to = bounds[part + 1]
            do throws(ZramError) {
                if command == .write {
                    try write(offset + from, buffer, at: from, length: to - from)
                } else {
                    try readInto(buffer, at: header + from, offset: offset + from, length: to - from)
                }
            } catch {
                split.fail(error)
            }
            guard split.finishPart() else { return }
            let reply: (Reply, Int)
            if let error = split.error {
                reply = errorReply(request, nbdErrno(error), error.reason)
            } else if command == .write {
                reply = successReply(request)
            } else {
                if structuredReplies {
                    writeChunkHeader(buffer, request, type: .offsetData, length: 8 + length)
                    buffer.base.storeBE(request.offset, at: NBD.structuredHeaderSize)
                } else {
                    writeSimpleHeader(buffer, request, error: 0)
                }
                reply = (Reply(buffer: buffer, failed: false), buffer.count)
            }
            server.metrics.count(command, bytes: length, failed: reply.0.failed)
            complete(reply.0.buffer, count: reply.1)
        }
        for part in 1..<(bounds.count - 1) where !server.queue.trySubmit({ work(part) }) { work(part) }
        work(0)
    }

    // MARK: helpers

    /// Calls `body(page index, offset in the page, byte count, offset in the request)` for each page the range touches.
    private func forEachPage(
        _ offset: Int, _ length: Int,
        _ body: (Int, Int, Int, Int) throws(ZramError) -> Void
    ) throws(ZramError) {
        let page = device.pageSize
        var at = 0
        while at < length {
            let position = offset + at
            let inPage = position % page
            let count = min(page - inPage, length - at)
            try body(position / page, inPage, count, at)
            at += count
        }
    }

    private func perform(_ request: NBDRequest, _ body: () throws(ZramError) -> Void) -> (Reply, Int) {
        do throws(ZramError) {
            try body()
        } catch {
            return errorReply(request, nbdErrno(error), error.reason)
        }
        return successReply(request)
    }

    private func nbdErrno(_ error: ZramError) -> NBDError {
        switch error.errno {
        case .ENOMEM: .enomem
        case .ENOSPC, .ERANGE: .enospc
        case .EINVAL: .einval
        default: .eio
        }
    }

    private func successReply(_ request: NBDRequest) -> (Reply, Int) {
        if structuredReplies {
            let buffer = IOBuffer(count: NBD.structuredHeaderSize)
            writeChunkHeader(buffer, request, type: .none, length: 0)
            return (Reply(buffer: buffer, failed: false), buffer.count)
        }
        let buffer = IOBuffer(count: NBD.simpleReplySize)
        writeSimpleHeader(buffer, request, error: 0)
        return (Reply(buffer: buffer, failed: false), buffer.count)
    }

    private func errorReply(_ request: NBDRequest, _ error: NBDError, _ message: String) -> (Reply, Int) {
        if structuredReplies {
            let text = Array(message.utf8.prefix(4096))
            let buffer = IOBuffer(count: NBD.structuredHeaderSize + 6 + text.count)
            writeChunkHeader(buffer, request, type: .error, length: 6 + text.count)
            buffer.base.storeBE(error.rawValue, at: NBD.structuredHeaderSize)
            buffer.base.storeBE(UInt16(text.count), at: NBD.structuredHeaderSize + 4)
            text.withUnsafeBytes { (buffer.base + NBD.structuredHeaderSize + 6).copyMemory(from: $0.baseAddress!, byteCount: text.count) }
            return (Reply(buffer: buffer, failed: true), buffer.count)
        }
        let buffer = IOBuffer(count: NBD.simpleReplySize)
        writeSimpleHeader(buffer, request, error: error.rawValue)
        return (Reply(buffer: buffer, failed: true), buffer.count)
    }

    private func writeSimpleHeader(_ buffer: IOBuffer, _ request: NBDRequest, error: UInt32) {
        buffer.base.storeBE(NBD.simpleReplyMagic, at: 0)
        buffer.base.storeBE(error, at: 4)
        buffer.base.storeBE(request.cookie, at: 8)
    }

    private func writeChunkHeader(_ buffer: IOBuffer, _ request: NBDRequest, type: NBDChunk, length: Int) {
        buffer.base.storeBE(NBD.structuredReplyMagic, at: 0)
        buffer.base.storeBE(NBDChunk.flagDone, at: 4)
        buffer.base.storeBE(type.rawValue, at: 6)
        buffer.base.storeBE(request.cookie, at: 8)
        buffer.base.storeBE(UInt32(length), at: 16)
    }
}

/// The parts of one split request: the first error and how many parts are still running.
final class SplitRequest: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = PThreadMutex()
    private var remaining: Int
    private var firstError: ZramError?

    init(parts: Int) { remaining = parts }

    func fail(_ error: ZramError) { lock.withLock { if firstError == nil { firstError = error } } }

    /// True for the part that finished last (it sends the reply).
    func finishPart() -> Bool {
        lock.withLock {
            remaining -= 1; return remaining == 0
        }
    }

    var error: ZramError? { lock.withLock { firstError } }
}
