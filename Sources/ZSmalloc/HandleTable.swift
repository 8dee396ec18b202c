import ZSync
/// The indirection that keeps handles stable: entry `h` says which zspage and which
/// object slot hold handle `h`'s object right now.
///
/// Storage is a fixed directory of fixed-size segments, so entries never move while
/// other threads read them. Who may touch an entry:
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
        directory = .allocate(capacity: Self.maxSegments)
        directory.initialize(repeating: nil, count: Self.maxSegments)
        state = .allocate(capacity: 1)
        state.initialize(to: (next: 1, free: .allocate(capacity: 1024), freeCount: 0, freeCapacity: 1024))
    }

    deinit {
        for i in 0..<Self.maxSegments { directory[i]?.deallocate() }
        directory.deallocate()
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
                let storage = UnsafeMutablePointer<UInt64>.allocate(capacity: Self.segmentSize)
                storage.initialize(repeating: 0, count: Self.segmentSize)
                directory[segment] = storage
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

    @inline(__always) subscript(index: UInt32) -> UInt64 {
        get { directory[Int(index >> UInt32(Self.segmentBits))]![Int(index) & (Self.segmentSize - 1)] }
        set { directory[Int(index >> UInt32(Self.segmentBits))]![Int(index) & (Self.segmentSize - 1)] = newValue }
    }
}
