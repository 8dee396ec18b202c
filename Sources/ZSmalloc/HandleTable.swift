import Glibc
import ZSync

/// The indirection that keeps handles stable: entry `h` says which zspage and which
/// object slot hold handle `h`'s object right now.
///
/// Storage is a fixed directory of fixed-size segments, so entries never move while
/// other threads read them. Directory and segments are anonymous mappings, zero until
/// touched: only the pages holding entries in use are resident (a 512 KiB segment is made
/// for the first handle; zeroing it up front kept it all resident). Who may touch an entry:
/// - `malloc` writes the entry of a handle it has just taken, under the class lock;
/// - compaction rewrites entries under the pool lock held for writing;
/// - everyone else reads entries under the pool lock held for reading.
final class HandleTable: @unchecked Sendable {
    private static let segmentBits = 16
    private static let segmentSize = 1 << segmentBits
    private static let maxSegments = 1 << 15

    private let directory: UnsafeMutablePointer<UnsafeMutablePointer<UInt64>?>
    private let lock = PThreadMutex()
    // Guarded by `lock`; raw so that the hot path pays no exclusivity checks.
    private let state: UnsafeMutablePointer<(next: UInt32, free: UnsafeMutablePointer<UInt32>, freeCount: Int, freeCapacity: Int)>

    init() {
        // An all-zero word is a nil segment pointer.
        guard let raw = Self.mapZeroed(Self.maxSegments * MemoryLayout<UnsafeMutablePointer<UInt64>?>.stride) else {
            fatalError("cannot map the handle directory (\(Self.maxSegments * 8) bytes)")
        }
        directory = raw.bindMemory(to: UnsafeMutablePointer<UInt64>?.self, capacity: Self.maxSegments)
        state = .allocate(capacity: 1)
        state.initialize(to: (next: 1, free: .allocate(capacity: 1024), freeCount: 0, freeCapacity: 1024))
    }

    deinit {
        for i in 0..<Self.maxSegments {
            if let segment = directory[i] { munmap(segment, Self.segmentSize * MemoryLayout<UInt64>.stride) }
        }
        munmap(directory, Self.maxSegments * MemoryLayout<UnsafeMutablePointer<UInt64>?>.stride)
        state.pointee.free.deallocate()
        state.deallocate()
    }

    /// Takes an unused handle index.
    func take() throws(ZsError) -> UInt32 {
        try lock.withLock { () throws(ZsError) -> UInt32 in
            if state.pointee.freeCount > 0 {
                state.pointee.freeCount -= 1
                return state.pointee.free[state.pointee.freeCount]
            }
            let index = state.pointee.next
            let segment = Int(index >> UInt32(Self.segmentBits))
            guard segment < Self.maxSegments else { throw .tooManyObjects }
            if directory[segment] == nil {
                guard let raw = Self.mapZeroed(Self.segmentSize * MemoryLayout<UInt64>.stride) else { throw .outOfMemory }
                directory[segment] = raw.bindMemory(to: UInt64.self, capacity: Self.segmentSize)
            }
            state.pointee.next += 1
            return index
        }
    }

    /// Gives a handle index back for reuse.
    func give(_ index: UInt32) {
        self[index] = 0
        lock.withLock {
            if state.pointee.freeCount == state.pointee.freeCapacity {
                let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: state.pointee.freeCapacity * 2)
                grown.moveInitialize(from: state.pointee.free, count: state.pointee.freeCount)
                state.pointee.free.deallocate()
                state.pointee.free = grown
                state.pointee.freeCapacity *= 2
            }
            state.pointee.free[state.pointee.freeCount] = index
            state.pointee.freeCount += 1
        }
    }

    /// `bytes` of anonymous memory, zero until touched; nil when the system refuses.
    private static func mapZeroed(_ bytes: Int) -> UnsafeMutableRawPointer? {
        let region = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let region, region != MAP_FAILED else { return nil }
        return region
    }

    @inline(__always) subscript(index: UInt32) -> UInt64 {
        get { directory[Int(index >> UInt32(Self.segmentBits))]![Int(index) & (Self.segmentSize - 1)] }
        set { directory[Int(index >> UInt32(Self.segmentBits))]![Int(index) & (Self.segmentSize - 1)] = newValue }
    }
}
