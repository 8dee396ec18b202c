import Glibc
import ZSync

/// One zspage: a chain of chunks holding `objectsPerZspage` equal slots of its class's
/// size laid end to end, so a slot may straddle two chunks.
///
/// Lives in manually managed memory so its lock has a stable address and the hot
/// paths pay no reference counting. Fields other than `lock` are guarded by the
/// owning class's lock; the bytes of the objects by `lock` (readers and writers of
/// distinct objects share it; compaction takes it exclusively to migrate).
struct ZsPage {
    var lock: pthread_rwlock_t
    /// Neighbours in the class's fullness-group list.
    var prev: UnsafeMutablePointer<ZsPage>?
    var next: UnsafeMutablePointer<ZsPage>?
    var chunks: UnsafeMutablePointer<UnsafeMutableRawPointer>
    /// Per slot: the handle index when used; `freeBit | next free slot` when free.
    var slots: UnsafeMutablePointer<UInt32>
    var classIndex: Int32
    var inUse: Int32
    /// The first free slot, or `noSlot`.
    var freeHead: UInt32
    var group: Int32

    static let freeBit: UInt32 = 1 << 31
    static let noSlot: UInt32 = freeBit - 1
    static let lockOffset = MemoryLayout<ZsPage>.offset(of: \.lock)!
}

typealias ZsPagePointer = UnsafeMutablePointer<ZsPage>

extension UnsafeMutablePointer where Pointee == ZsPage {
    /// Creates a zspage over `chunks` with every slot free.
    ///
    /// The header, the chunk list and the slot table share one allocation: one malloc
    /// header instead of three, for the tens of thousands of zspages of a full pool.
    static func make(
        classIndex: Int, shape: ClassShape, chunks source: UnsafePointer<UnsafeMutableRawPointer>
    ) -> ZsPagePointer {
        let headerBytes = MemoryLayout<ZsPage>.stride
        let chunkBytes = shape.chainLength * MemoryLayout<UnsafeMutableRawPointer>.stride
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: headerBytes + chunkBytes + shape.objectsPerZspage * MemoryLayout<UInt32>.stride,
            alignment: MemoryLayout<ZsPage>.alignment)
        let chunks = (raw + headerBytes).bindMemory(to: UnsafeMutableRawPointer.self, capacity: shape.chainLength)
        chunks.initialize(from: source, count: shape.chainLength)
        let slots = (raw + headerBytes + chunkBytes).bindMemory(to: UInt32.self, capacity: shape.objectsPerZspage)
        for i in 0..<shape.objectsPerZspage {
            slots[i] = ZsPage.freeBit | (i + 1 < shape.objectsPerZspage ? UInt32(i + 1) : ZsPage.noSlot)
        }
        let page = raw.bindMemory(to: ZsPage.self, capacity: 1)
        page.initialize(
            to: ZsPage(
                lock: pthread_rwlock_t(), prev: nil, next: nil, chunks: chunks, slots: slots,
                classIndex: Int32(classIndex), inUse: 0, freeHead: 0, group: 0))
        checked(pthread_rwlock_init(page.lockPointer, nil), "pthread_rwlock_init")
        return page
    }

    /// Frees the metadata (the chunks go back to the arena separately).
    func destroy() {
        checked(pthread_rwlock_destroy(lockPointer), "pthread_rwlock_destroy")
        deinitialize(count: 1)
        UnsafeMutableRawPointer(self).deallocate()
    }

    @inline(__always) var lockPointer: UnsafeMutablePointer<pthread_rwlock_t> {
        (UnsafeMutableRawPointer(self) + ZsPage.lockOffset).assumingMemoryBound(to: pthread_rwlock_t.self)
    }

    @inline(__always) func readLock() { checked(pthread_rwlock_rdlock(lockPointer), "pthread_rwlock_rdlock") }
    @inline(__always) func tryWriteLock() -> Bool {
        checkedTry(pthread_rwlock_trywrlock(lockPointer), "pthread_rwlock_trywrlock")
    }
    @inline(__always) func unlock() { checked(pthread_rwlock_unlock(lockPointer), "pthread_rwlock_unlock") }

    /// Takes the first free slot for handle `handle`; the caller checked there is one.
    @inline(__always) func takeSlot(for handle: UInt32) -> UInt32 {
        let slot = pointee.freeHead
        pointee.freeHead = pointee.slots[Int(slot)] & ~ZsPage.freeBit
        pointee.slots[Int(slot)] = handle
        pointee.inUse += 1
        return slot
    }

    /// Marks `slot` free.
    @inline(__always) func releaseSlot(_ slot: UInt32) {
        pointee.slots[Int(slot)] = ZsPage.freeBit | pointee.freeHead
        pointee.freeHead = slot
        pointee.inUse -= 1
    }

    /// Copies `count` bytes at byte `offset` of the zspage into `dst`, across chunk borders.
    @inline(__always) func copyOut(offset: Int, count: Int, chunkSize: Int, to dst: UnsafeMutableRawPointer) {
        var done = 0
        while done < count {
            let at = offset + done
            let piece = min(count - done, chunkSize - at % chunkSize)
            (dst + done).copyMemory(from: pointee.chunks[at / chunkSize] + at % chunkSize, byteCount: piece)
            done += piece
        }
    }

    /// Copies `count` bytes from `src` to byte `offset` of the zspage, across chunk borders.
    @inline(__always) func copyIn(offset: Int, count: Int, chunkSize: Int, from src: UnsafeRawPointer) {
        var done = 0
        while done < count {
            let at = offset + done
            let piece = min(count - done, chunkSize - at % chunkSize)
            (pointee.chunks[at / chunkSize] + at % chunkSize).copyMemory(from: src + done, byteCount: piece)
            done += piece
        }
    }
}
