import ZSmalloc

/// Which slots `recompress` considers (zram's `type=`); nil means every slot.
public enum RecompressKind: String, Sendable, CaseIterable {
    case idle, huge, huge_idle

    /// The flags a slot must carry to be considered.
    var requiredFlags: SlotFlags {
        switch self {
        case .idle: .idle
        case .huge: .huge
        case .huge_idle: [.huge, .idle]
        }
    }
}

/// A parsed `recompress` request.
public struct RecompressRequest: Sendable, Equatable {
    public var kind: RecompressKind?
    /// Only objects of at least this many bytes, and results must come in under it; 0 = none.
    public var threshold: Int
    /// At most this many attempts; nil = no limit.
    public var maxPages: Int?
    /// Use only this algorithm (by name) …
    public var algorithm: String?
    /// … or only this priority; neither means every priority in order.
    public var priority: Int?

    public init(kind: RecompressKind? = nil, threshold: Int = 0, maxPages: Int? = nil,
                algorithm: String? = nil, priority: Int? = nil) {
        self.kind = kind
        self.threshold = threshold
        self.maxPages = maxPages
        self.algorithm = algorithm
        self.priority = priority
    }
}

extension ZramDevice {
    /// Recompresses matching slots with the secondary algorithms (zram's `recompress`).
    ///
    /// Candidates go largest first. Each is decompressed and tried with every algorithm
    /// above its current priority in order; the first result that lands in a smaller size
    /// class (and under `threshold`) replaces it. A slot that none shrinks, the highest
    /// priority included, is marked `incompressible`. Each slot stays locked while its
    /// algorithms run (the slot's lock only).
    /// - Returns: pages recompressed.
    @discardableResult
    public func recompress(_ request: RecompressRequest) throws(ZramError) -> Int {
        try requireLive("recompress") { live throws(ZramError) -> Int in
            let configured = (1...3).filter { live.streams[$0] != nil }
            guard let top = configured.last else {
                throw ZramError(.EINVAL, "no recomp_algorithm is set for \(name)")
            }
            var allowed = configured
            if let algorithm = request.algorithm {
                guard let p = configured.first(where: { live.streams[$0]!.codec.name == algorithm }) else {
                    throw ZramError(.EINVAL, "\(algorithm) is not a recomp_algorithm of \(name)")
                }
                allowed = [p]
            } else if let priority = request.priority {
                guard configured.contains(priority) else {
                    throw ZramError(.EINVAL, "no recomp_algorithm has priority \(priority)")
                }
                allowed = [priority]
            }
            guard request.threshold <= live.hugeThreshold else {
                throw ZramError(.EINVAL, "threshold \(request.threshold) is not below the huge size \(live.hugeThreshold + 1)")
            }
            postProcessLock.lock()
            defer { postProcessLock.unlock() }
            let required = SlotFlags.stored.union(request.kind?.requiredFlags ?? [])
            let candidates = markPostProcessing(live, Array(0..<live.slots.count)) { state in
                state.flags.isSuperset(of: required)
                    && state.flags.isDisjoint(with: [.same, .writtenBack, .incompressible])
                    && state.priority < allowed.last!
                    && (request.threshold == 0 || state.size >= request.threshold)
            }
            let limit = min(candidates.count, request.maxPages ?? candidates.count)
            defer { clearPostProcessing(live, candidates[limit...]) }
            var done = 0
            let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * live.pageSize, alignment: 16)
            defer { buffers.deallocate() }
            let page = UnsafeMutableRawBufferPointer(rebasing: buffers[..<live.pageSize])
            let out = UnsafeMutableRawBufferPointer(rebasing: buffers[live.pageSize...])
            for index in candidates[..<limit] {
                live.stats.recompressAttempts.add(1, ordering: .relaxed)
                let shrunk = try live.slots.withLock(index) { () throws(ZramError) -> Bool in
                    var state = live.slots[index]
                    guard state.flags.contains(.postProcessing) else { return false }
                    state.flags.remove(.postProcessing)
                    defer { live.slots[index] = state }
                    guard (try? restoreLocked(live, state, into: page)) != nil else { return false }
                    let oldClass = live.pool.classSize(for: state.size)
                    for priority in allowed where priority > state.priority {
                        guard let length = try? live.streams[priority]!.compress(UnsafeRawBufferPointer(page), into: out),
                              length <= live.hugeThreshold,
                              live.pool.classSize(for: length) < oldClass,
                              request.threshold == 0 || length < request.threshold
                        else { continue }
                        let handle = try allocate(live, length: length)
                        live.pool.write(handle, UnsafeRawBufferPointer(rebasing: out[..<length]))
                        live.pool.free(Handle(raw: UInt32(state.value)))
                        live.stats.comprDataSize.add(length - state.size, ordering: .relaxed)
                        if state.flags.contains(.huge) { live.stats.hugePages.subtract(1, ordering: .relaxed) }
                        state.flags.remove(.huge)
                        state.value = UInt64(handle.raw)
                        state.size = length
                        state.priority = priority
                        return true
                    }
                    if allowed.last == top { state.flags.insert(.incompressible) }
                    return false
                }
                if shrunk {
                    done += 1
                    live.stats.recompressed.add(1, ordering: .relaxed)
                }
            }
            return done
        }
    }
}
