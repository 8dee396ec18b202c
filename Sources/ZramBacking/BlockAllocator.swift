/// In-memory block allocator: hands out block numbers 1, 2, 3, … and reuses freed
/// numbers lowest-first (a min-heap of freed numbers below the high-water mark).
///
/// Block 0 is never handed out, as in zram (whose bitmap reserves bit 0), so a
/// device may use 0 as "no block".
///
/// Each block has a state; the store only writes blocks that are `allocated`
/// (write-once, as zram writes each written-back page to a fresh block) and only
/// reads blocks that are `written`. Not thread-safe: `BackingStore` keeps it in a
/// `Locked` and never does I/O while holding it.
struct BlockAllocator: ~Copyable {
    enum State: UInt8 { case free = 0, allocated, writing, written }

    /// nil = unbounded.
    let capacity: Int64?
    /// `states[b - 1]` for blocks 1 ..< nextFresh.
    private var states: [State] = []
    /// Freed block numbers, all below `nextFresh`; a binary min-heap.
    private var freeHeap: [Int64] = []
    /// Blocks not free (allocated, being written, or written).
    private(set) var inUse: Int64 = 0

    init(capacity: Int64?) { self.capacity = capacity }

    private var nextFresh: Int64 { Int64(states.count) + 1 }

    func state(_ block: Int64) -> State {
        guard block >= 1, block < nextFresh else { return .free }
        return states[Int(block - 1)]
    }

    /// All or nothing: `count` blocks, lowest free numbers first, or nil when fewer are left.
    mutating func allocate(_ count: Int) -> [Int64]? {
        if let capacity, Int64(count) > capacity - inUse { return nil }
        var result: [Int64] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            let block: Int64
            if let top = popMin() {
                block = top
                states[Int(block - 1)] = .allocated
            } else {
                block = nextFresh
                states.append(.allocated)
            }
            result.append(block)
        }
        inUse += Int64(count)
        return result
    }

    /// Frees one block; nil on success, else why not.
    mutating func free(_ block: Int64) -> String? {
        switch state(block) {
        case .free: return "backing block \(block) is not allocated"
        case .writing: return "backing block \(block) is being written"
        case .allocated, .written:
            release(block)
            return nil
        }
    }

    /// Starts from the blocks a saved image still holds (`BackingStore`'s restore): each of
    /// them `written`, every other number below the highest of them free.
    mutating func adopt(written blocks: [Int64]) {
        precondition(states.isEmpty, "adopt on a fresh allocator only")
        guard let highest = blocks.max() else { return }
        states = Array(repeating: .free, count: Int(highest))
        for block in blocks { states[Int(block - 1)] = .written }
        inUse = Int64(blocks.count)
        for block in 1...highest where states[Int(block - 1)] == .free { pushHeap(block) }
    }

    /// Marks a batch `writing`; nil on success, else why not (and nothing changed).
    mutating func beginWrite(_ blocks: [Int64]) -> String? {
        for (i, block) in blocks.enumerated() {
            let current = state(block)
            if current == .allocated {
                states[Int(block - 1)] = .writing
                continue
            }
            let why =
                switch current {
                case .free: "backing block \(block) is not allocated"
                case .writing:
                    blocks[..<i].contains(block)
                        ? "backing block \(block) appears twice in the batch" : "backing block \(block) is being written"
                default: "backing block \(block) was already written (blocks are write-once: free it and allocate another)"
                }
            // Undo the marks of this batch (a duplicate was marked once).
            for b in blocks[..<i] where states[Int(b - 1)] == .writing { states[Int(b - 1)] = .allocated }
            return why
        }
        return nil
    }

    /// Ends a batch: `written` on success, back to the free pool on failure.
    mutating func endWrite(_ blocks: [Int64], committed: Bool) {
        for block in blocks {
            if committed { states[Int(block - 1)] = .written } else { release(block) }
        }
    }

    private mutating func release(_ block: Int64) {
        states[Int(block - 1)] = .free
        inUse -= 1
        if block == nextFresh - 1 {
            // Shrink the high-water mark over trailing free blocks so the heap stays small.
            states.removeLast()
            while let last = states.last, last == .free {
                states.removeLast()
            }
            // Heap entries at or above the new mark are stale; dropped lazily in popMin.
        } else {
            pushHeap(block)
        }
    }

    // MARK: min-heap

    private mutating func pushHeap(_ v: Int64) {
        freeHeap.append(v)
        var i = freeHeap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if freeHeap[parent] <= freeHeap[i] { break }
            freeHeap.swapAt(parent, i)
            i = parent
        }
    }

    /// The lowest free block below the high-water mark, skipping stale entries.
    private mutating func popMin() -> Int64? {
        while let top = freeHeap.first {
            let last = freeHeap.removeLast()
            if !freeHeap.isEmpty {
                freeHeap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < freeHeap.count, freeHeap[l] < freeHeap[m] { m = l }
                    if r < freeHeap.count, freeHeap[r] < freeHeap[m] { m = r }
                    if m == i { break }
                    freeHeap.swapAt(i, m)
                    i = m
                }
            }
            if top < nextFresh, states[Int(top - 1)] == .free { return top }
        }
        return nil
    }
}
