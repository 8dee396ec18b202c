import ZSmalloc

/// A parsed `recompress` request.
package struct RecompressRequest: Sendable, Equatable {
    /// Which slots are considered; nil means every slot.
    package var kind: SlotKind?
    /// Only objects of at least this many bytes, and results must come in under it; 0 = none.
    package var threshold: Int
    /// At most this many attempts; nil = no limit.
    package var maxPages: Int?
    /// Use only this algorithm (by name) …
    package var algorithm: String?
    /// … or only this priority; neither means every priority in order.
    package var priority: Int?

    package init(
        kind: SlotKind? = nil, threshold: Int = 0, maxPages: Int? = nil,
        algorithm: String? = nil, priority: Int? = nil
    ) {
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
    /// - Parameter progress: counters to publish and a cancellation to honour between slots.
    @discardableResult
    package func recompress(_ request: RecompressRequest, progress: JobProgress? = nil) throws(ZramError) -> Int {
        try withMaintenance("recompress") { live throws(ZramError) -> Int in
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
            progress?.begin(total: limit)
            // Every exit, ENOMEM part-way included, leaves no slot marked.
            var next = 0
            defer { clearPostProcessing(live, candidates[next...]) }
            var done = 0
            let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: 2 * live.pageSize, alignment: 16)
            defer { buffers.deallocate() }
            while next < limit {
                progress?.update(examined: next, processed: done)
                // Cancelled: the deferred clear un-marks every candidate not yet taken.
                if stopRequested(progress) { break }
                let index = candidates[next]
                next += 1
                live.stats.recompressAttempts.add(1, ordering: .relaxed)
                let outcome = try live.slots.withLock(index) { () throws(ZramError) -> RecompressOutcome in
                    var state = live.slots[index]
                    guard state.flags.contains(.postProcessing) else { return .skipped }
                    state.flags.remove(.postProcessing)
                    defer { live.slots[index] = state }
                    return try recompressLocked(
                        live, &state, allowed: allowed, top: top,
                        threshold: request.threshold, buffers: buffers)
                }
                switch outcome {
                case .recompressed:
                    done += 1
                    live.stats.recompressed.add(1, ordering: .relaxed)
                case .failed:
                    live.stats.recompressFailed.add(1, ordering: .relaxed)
                case .kept, .skipped:
                    break
                }
            }
            progress?.update(examined: next, processed: done)
            return done
        }
    }
}

/// What recompression did with one slot.
enum RecompressOutcome {
    case recompressed, kept, skipped
    /// A codec failed on the page: the slot keeps its object, not marked incompressible.
    case failed
}

extension ZramDevice {
    /// Tries each allowed priority above the slot's on its page; the caller holds the slot
    /// lock and stores `state` back.
    ///
    /// On success the slot loses `idle` and its access time, as the kernel's `slot_free` does
    /// before it installs the new object: `recompress type=idle` then `writeback idle` writes
    /// back only what recompression could not shrink. The new object is allocated without the
    /// `mem_limit` check: it lands in a smaller class and the old one is freed at once.
    func recompressLocked(
        _ live: LiveDevice, _ state: inout SlotState, allowed: [Int], top: Int,
        threshold: Int, buffers: UnsafeMutableRawBufferPointer
    ) throws(ZramError) -> RecompressOutcome {
        let page = UnsafeMutableRawBufferPointer(rebasing: buffers[..<live.pageSize])
        let out = UnsafeMutableRawBufferPointer(rebasing: buffers[live.pageSize...])
        do { try restoreLocked(live, state, into: page) } catch { return .failed }
        let oldClass = live.pool.classSize(for: state.size)
        var failed = false
        for priority in allowed where priority > state.priority {
            let length: Int?
            do { length = try live.streams[priority]!.compress(UnsafeRawBufferPointer(page), into: out) } catch {
                failed = true
                continue
            }
            guard let length, length <= live.hugeThreshold, live.pool.classSize(for: length) < oldClass,
                threshold == 0 || length < threshold
            else { continue }
            let handle: Handle
            do { handle = try live.pool.malloc(length) } catch {
                throw ZramError(.ENOMEM, "the allocator is out of memory")
            }
            live.pool.write(handle, UnsafeRawBufferPointer(rebasing: out[..<length]))
            live.pool.free(Handle(raw: UInt32(state.value)))
            live.stats.comprDataSize.add(length - state.size, ordering: .relaxed)
            if state.flags.contains(.huge) { live.stats.hugePages.subtract(1, ordering: .relaxed) }
            state.flags.subtract([.huge, .idle])
            state.accessTime = 0
            state.value = UInt64(handle.raw)
            state.size = length
            state.priority = priority
            return .recompressed
        }
        if failed { return .failed }
        if allowed.last == top { state.flags.insert(.incompressible) }
        return .kept
    }
}
