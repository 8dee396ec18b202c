import ZSync
import Glibc
import Synchronization

/// Hands out page-sized chunks carved from large anonymous mappings, and gives freed
/// chunks' memory back to the system at once (`MADV_DONTNEED`), so RSS follows use.
///
/// One mapping per chunk would cost a syscall per zspage and exhaust the kernel's
/// mapping limit (65,530) at a few hundred MiB; one `malloc` per chunk would keep a
/// header per chunk and keep freed memory in the process.
final class ChunkArena: @unchecked Sendable {
    let chunkSize: Int
    private let chunksPerRegion = 512
    private let lock = PThreadMutex()
    // Guarded by `lock`.
    private var regions: [UnsafeMutableRawPointer] = []
    private var freeChunks: [UnsafeMutableRawPointer] = []
    private var bumpNext: UnsafeMutableRawPointer?
    private var bumpLeft = 0

    private let inUse = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)

    init(chunkSize: Int) {
        self.chunkSize = chunkSize
    }

    deinit {
        for region in regions { munmap(region, chunkSize * chunksPerRegion) }
    }

    /// Chunks handed out and not yet returned.
    var chunksInUse: Int { inUse.load(ordering: .relaxed) }
    /// The most chunks in use at once since creation or the last `resetPeak`.
    var peakChunks: Int { peak.load(ordering: .relaxed) }

    /// Sets the peak to the current use (zram's `echo 0 > mem_used_max`).
    func resetPeak() { peak.store(inUse.load(ordering: .relaxed), ordering: .relaxed) }

    /// Takes `count` chunks into `out`; all or none.
    func allocate(_ count: Int, into out: UnsafeMutablePointer<UnsafeMutableRawPointer>) throws(ZsError) {
        try lock.withLock { () throws(ZsError) in
            for i in 0..<count {
                if let chunk = freeChunks.popLast() {
                    out[i] = chunk
                    continue
                }
                if bumpLeft == 0 {
                    let bytes = chunkSize * chunksPerRegion
                    let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                    guard let region, region != MAP_FAILED else {
                        for j in 0..<i { freeChunks.append(out[j]) }
                        throw .outOfMemory
                    }
                    regions.append(region)
                    bumpNext = region
                    bumpLeft = chunksPerRegion
                }
                out[i] = bumpNext!
                bumpNext = bumpNext! + chunkSize
                bumpLeft -= 1
            }
        }
        let now = inUse.add(count, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
    }

    /// Returns `count` chunks; their memory goes back to the system before they are reused.
    func release(_ chunks: UnsafePointer<UnsafeMutableRawPointer>, count: Int) {
        for i in 0..<count { madvise(chunks[i], chunkSize, MADV_DONTNEED) }
        lock.withLock {
            for i in 0..<count { freeChunks.append(chunks[i]) }
        }
        inUse.subtract(count, ordering: .relaxed)
    }
}
