import Glibc
import Synchronization
import ZSync

/// Hands out page-sized chunks carved from large anonymous mappings, and gives freed
/// chunks' memory back to the system (`MADV_DONTNEED`) so RSS follows use.
///
/// One mapping per chunk would cost a syscall per zspage and exhaust the kernel's
/// mapping limit (65,530) at a few hundred MiB; one `malloc` per chunk would keep a
/// header per chunk and keep freed memory in the process.
///
/// Two costs are traded for speed, both bounded: a region's memory is populated
/// `populateStep` bytes at a time as chunks are carved (one `MADV_POPULATE_WRITE` instead
/// of a page fault per chunk, at most one step ahead of use: a region populated whole
/// kept up to 2 MiB resident ahead of the pages stored), and up to `dirtyLimit` freed
/// chunks are kept mapped for reuse, so churn does not pay a syscall and a fault per
/// zspage. `trim()` returns those too.
final class ChunkArena: @unchecked Sendable {
    let chunkSize: Int
    private let chunksPerRegion = 512
    /// Bytes populated at once as the bump pointer advances (16 chunks of 4 KiB; one chunk
    /// when chunks are larger). Divides the region, chunks being powers of two.
    private let populateStep: Int
    private let dirtyLimit = 256
    private let lock = PThreadMutex()
    // Guarded by `lock`.
    private var regions: [UnsafeMutableRawPointer] = []
    /// Freed chunks still backed by memory, reused first.
    private var dirty: UnsafeMutablePointer<UnsafeMutableRawPointer>
    private var dirtyCount = 0
    /// Freed chunks whose memory went back to the system.
    private var clean: [UnsafeMutableRawPointer] = []
    private var bumpNext: UnsafeMutableRawPointer?
    private var bumpLeft = 0
    /// Where the current region's populated part ends.
    private var populatedEnd: UnsafeMutableRawPointer?
    /// Regions mapped but not yet carved (see `allocate`).
    private var spare: [UnsafeMutableRawPointer] = []
    /// Maps a new region: `map`, or a slow or failing stand-in in tests.
    private let mapRegion: @Sendable (Int) -> UnsafeMutableRawPointer?

    private let inUse = Atomic<Int>(0)
    private let peak = Atomic<Int>(0)

    init(chunkSize: Int, mapRegion: @escaping @Sendable (Int) -> UnsafeMutableRawPointer? = ChunkArena.map) {
        self.chunkSize = chunkSize
        self.mapRegion = mapRegion
        populateStep = max(64 << 10, chunkSize)
        dirty = .allocate(capacity: dirtyLimit)
    }

    deinit {
        for region in regions { munmap(region, chunkSize * chunksPerRegion) }
        dirty.deallocate()
    }

    /// Chunks handed out and not yet returned.
    var chunksInUse: Int { inUse.load(ordering: .relaxed) }
    /// The most chunks in use at once since creation or the last `resetPeak`.
    var peakChunks: Int { peak.load(ordering: .relaxed) }

    /// Sets the peak to the current use (zram's `echo 0 > mem_used_max`).
    func resetPeak() { peak.store(inUse.load(ordering: .relaxed), ordering: .relaxed) }

    /// Takes `count` chunks into `out`; all or none.
    ///
    /// A new region is mapped, and its memory populated, with no lock held (the kernel's
    /// `zs_malloc` drops `class->lock` before it allocates a zspage for the same reason):
    /// frees and other allocations must not wait for it. Two threads that both run dry may
    /// both map; the second region is kept in `spare` (mapped, not yet resident) and used
    /// when the first is.
    func allocate(_ count: Int, into out: UnsafeMutablePointer<UnsafeMutableRawPointer>) throws(ZsError) {
        lock.lock()
        var taken = 0
        // Steps to populate once the lock is released (one per 16 chunks carved, so rarely any).
        var populate: [UnsafeMutableRawPointer] = []
        while taken < count {
            if dirtyCount > 0 {
                dirtyCount -= 1
                out[taken] = dirty[dirtyCount]
            } else if let chunk = clean.popLast() {
                out[taken] = chunk
            } else if bumpLeft > 0 || !spare.isEmpty {
                if bumpLeft == 0 {
                    bumpNext = spare.removeLast()
                    bumpLeft = chunksPerRegion
                    populatedEnd = bumpNext
                }
                if bumpNext! >= populatedEnd! {
                    // A chunk another thread takes before this one populates simply faults in.
                    populate.append(populatedEnd!)
                    populatedEnd = populatedEnd! + populateStep
                }
                out[taken] = bumpNext!
                bumpNext = bumpNext! + chunkSize
                bumpLeft -= 1
            } else {
                lock.unlock()
                let region = mapRegion(chunkSize * chunksPerRegion)
                lock.lock()
                guard let region else {
                    for j in 0..<taken { clean.append(out[j]) }
                    lock.unlock()
                    throw .outOfMemory
                }
                regions.append(region)
                spare.append(region)
                continue
            }
            taken += 1
        }
        lock.unlock()
        // Best effort, as MAP_POPULATE: memory the kernel cannot populate now faults in on use.
        for step in populate { _ = madvise(step, populateStep, Self.madvPopulateWrite) }
        let now = inUse.add(count, ordering: .relaxed).newValue
        var seen = peak.load(ordering: .relaxed)
        while now > seen {
            let (exchanged, current) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
            if exchanged { break }
            seen = current
        }
    }

    /// Linux's MADV_POPULATE_WRITE (5.14), which the Glibc module does not import.
    static let madvPopulateWrite: Int32 = 23

    /// Maps `bytes` of anonymous memory (populated later, step by step, by `allocate`);
    /// nil when the system refuses.
    static func map(_ bytes: Int) -> UnsafeMutableRawPointer? {
        let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let region, region != MAP_FAILED else { return nil }
        return region
    }

    /// Returns `count` chunks: kept for reuse while the dirty cache has room, else their
    /// memory goes back to the system.
    func release(_ chunks: UnsafePointer<UnsafeMutableRawPointer>, count: Int) {
        inUse.subtract(count, ordering: .relaxed)
        var first = 0
        lock.withLock {
            while first < count, dirtyCount < dirtyLimit {
                dirty[dirtyCount] = chunks[first]
                dirtyCount += 1
                first += 1
            }
        }
        guard first < count else { return }
        for i in first..<count { madvise(chunks[i], chunkSize, MADV_DONTNEED) }
        lock.withLock {
            for i in first..<count { clean.append(chunks[i]) }
        }
    }

    /// Gives the memory of every cached free chunk back to the system.
    func trim() {
        let drained: [UnsafeMutableRawPointer] = lock.withLock {
            let all = Array(UnsafeBufferPointer(start: dirty, count: dirtyCount))
            dirtyCount = 0
            return all
        }
        for chunk in drained { madvise(chunk, chunkSize, MADV_DONTNEED) }
        lock.withLock { clean.append(contentsOf: drained) }
    }
}
