import ZSync
import CSQLite
import CZlib
import Synchronization

/// The backing device of one zram device: a SQLite file of written-back pages.
///
/// Blocks are numbered from 1 (0 is never handed out). Life of a block:
/// `allocate` → `write` once (in a batch, one transaction) → `read` any number of
/// times → `free`. Blocks are write-once, as in zram, where every writeback gets a
/// fresh block and an overwritten slot frees its old one.
///
/// Sendable without `@unchecked` of its own: every stored property is immutable, an
/// `Atomic`, or a `Locked` (a pthread mutex around one value; see Locked.swift for why not
/// `Synchronization.Mutex`). Each SQLite connection sits in its own lock (one writer,
/// a pool of read-only readers) and is only touched while that one lock is held;
/// the allocator has its own lock, never held across SQLite I/O.
public final class BackingStore: Sendable {
    /// Counters behind zram's `bd_stat`, in 4 KiB units (a 16 KiB page counts 4).
    public struct Stats: Sendable, Equatable {
        /// Blocks in use (allocated, being written, or written). `bd_count`.
        public var bdCount: Int64
        /// Blocks read successfully. `bd_reads`.
        public var bdReads: Int64
        /// Blocks written (committed). `bd_writes`.
        public var bdWrites: Int64
        /// Blocks in use, in blocks (pages) rather than 4 KiB units.
        package var blocksInUse: Int64

        public init(bdCount: Int64, bdReads: Int64, bdWrites: Int64, blocksInUse: Int64) {
            self.bdCount = bdCount
            self.bdReads = bdReads
            self.bdWrites = bdWrites
            self.blocksInUse = blocksInUse
        }

        /// `bd_stat` as zram prints it: `%8llu %8llu %8llu\n`.
        package var bdStatLine: String {
            func pad(_ v: Int64) -> String { String(repeating: " ", count: max(0, 8 - String(v).count)) + String(v) }
            return "\(pad(bdCount)) \(pad(bdReads)) \(pad(bdWrites))\n"
        }
    }

    /// Absolute path of the SQLite file.
    public let path: String
    /// Bytes per block: the device's page size.
    public let pageSize: Int
    /// At most this many blocks in use at once; nil = bounded only by the disk.
    package let capacityBlocks: Int?
    /// What opening did with the file, one line, for the log:
    /// `created …`, `… was empty`, or `discarded 123 blocks (… bytes) from a previous run of …`.
    public let openReport: String
    /// Blocks found in the file from a previous run and discarded (nil when it could not be
    /// counted, 0 for a new or empty file).
    package let discardedBlocks: Int?

    let units: Int64
    private let file: FileGuard
    let writer: Locked<SQLiteConnection>
    private let readers: [ReaderSlot]
    private let nextReader = Atomic<Int>(0)
    let allocator: Locked<BlockAllocator>
    /// The image a clean file held, when the caller asked to restore it and accepted it.
    public let restoredImage: StoreImage?
    let isClosed = Atomic<Bool>(false)
    private let readUnits = Atomic<Int64>(0)
    let writeUnits = Atomic<Int64>(0)
    private let lastFault = Locked<String?>(nil)

    static let insertSQL = "INSERT OR REPLACE INTO blocks(block, data, crc) VALUES (?1, ?2, ?3)"
    static let selectSQL = "SELECT data, crc FROM blocks WHERE block = ?1"

    /// Opens (creating if needed) the backing file at `path` and empties it.
    ///
    /// - `pageSize`: a multiple of 4096 up to 1 MiB.
    /// - `capacityBlocks`: optional bound; `allocate` beyond it throws `.noSpace`.
    /// - `readers`: size of the read-only connection pool (WAL readers run concurrently).
    /// - `synchronous`: SQLite's `synchronous` pragma; `OFF` by default because nothing in
    ///   the file survives a restart (see docs/BACKING_STORE.md).
    ///
    /// Throws `.invalidArgument` for a file that is not a zramd backing store (it is never
    /// overwritten), `.busy` when another store holds the file, `.io` when it cannot be opened.
    public init(
        path: String, pageSize: Int, capacityBlocks: Int? = nil, readers: Int = 4, synchronous: String = "OFF",
        restoring accept: ((StoreImage) -> ImageRefusal?)? = nil
    ) throws(BackingError) {
        guard pageSize > 0, pageSize % 4096 == 0, pageSize <= 1 << 20 else {
            throw .invalidArgument("page size \(pageSize) is not a multiple of 4096 up to 1 MiB")
        }
        if let capacityBlocks, capacityBlocks <= 0 {
            throw .invalidArgument("capacity of \(capacityBlocks) blocks is not positive")
        }
        guard (1...64).contains(readers) else { throw .invalidArgument("\(readers) reader connections (1…64)") }
        guard ["OFF", "NORMAL", "FULL", "EXTRA"].contains(synchronous.uppercased()) else {
            throw .invalidArgument("synchronous=\(synchronous) (OFF, NORMAL, FULL or EXTRA)")
        }
        self.path = path
        self.pageSize = pageSize
        self.capacityBlocks = capacityBlocks
        units = Int64(pageSize / 4096)
        file = try FileGuard(path: path)

        // Keep a clean image the caller accepts (`--persist`); otherwise start empty: count
        // what a previous run left (for the report), then drop it.
        var kept: StoreImage?
        var refusal = ""
        if case .zramdStore = file.previous, let accept {
            switch Self.image(at: path, accept) {
            case .success(let image): kept = image
            case .failure(let why): refusal = "; its image was not restored: \(why.reason)"
            }
        }
        switch file.previous {
        case .created:
            discardedBlocks = 0
            openReport = "created backing file \(path)"
        case .empty:
            discardedBlocks = 0
            openReport = "backing file \(path) was empty"
        case .zramdStore where kept != nil:
            discardedBlocks = 0
            openReport = "restored an image of \(kept!.slots.count) slot(s) from \(path)"
        case .zramdStore(let bytes):
            var count: Int?
            var why = ""
            do throws(BackingError) {
                let old = try SQLiteConnection(path: path, readOnly: false)
                count = try old.queryText("SELECT count(*) FROM blocks").flatMap { Int($0) }
            } catch {
                why = " (its contents could not be counted: \(error.reason))"
            }
            try file.discardContents()
            discardedBlocks = count
            openReport =
                "discarded \(count.map(String.init) ?? "an unknown number of") block(s) "
                + "(\(bytes) bytes) from a previous run of \(path)\(why)\(refusal)"
        }

        // The writer: schema and header first (rollback-journal mode writes them straight
        // into the file, so the application_id is on disk before WAL mode starts).
        let conn = try SQLiteConnection(path: path, readOnly: false)
        try conn.exec("PRAGMA application_id = \(zramdApplicationID)")
        try conn.exec("CREATE TABLE IF NOT EXISTS blocks(block INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL)")
        guard try conn.queryText("PRAGMA journal_mode = WAL")?.lowercased() == "wal" else {
            throw .io("\(path): SQLite refused WAL journal mode")
        }
        try conn.exec("PRAGMA synchronous = \(synchronous.uppercased())")
        // No mmap: a file truncated under a mapping would SIGBUS the whole server.
        try conn.exec("PRAGMA mmap_size = 0")
        try conn.exec("PRAGMA journal_size_limit = \(64 << 20)")
        try conn.exec("PRAGMA cell_size_check = ON")
        // Prepare now: SQLite opens the file lazily, and a connection must hold its descriptors
        // from the start (a file removed later must still serve the blocks written into it).
        var prepared = conn
        for sql in ["BEGIN IMMEDIATE", "COMMIT", Self.insertSQL] { _ = try prepared.statement(sql) }
        writer = Locked(prepared)

        var pool: [ReaderSlot] = []
        for _ in 0..<readers {
            let reader = try SQLiteConnection(path: path, readOnly: true)
            try reader.exec("PRAGMA mmap_size = 0")
            try reader.exec("PRAGMA cell_size_check = ON")
            try reader.exec("PRAGMA query_only = ON")
            var prepared = reader
            _ = try prepared.statement(Self.selectSQL)
            // One read transaction opens the -wal and -shm as well.
            _ = try prepared.queryText("SELECT count(*) FROM blocks WHERE block = 0")
            pool.append(ReaderSlot(prepared))
        }
        self.readers = pool
        var blocks = BlockAllocator(capacity: capacityBlocks.map(Int64.init))
        if let kept {
            try writer.withLock { conn throws(BackingError) in try Self.beginRestore(on: conn) }
            blocks.adopt(written: kept.slots.compactMap(\.block))
        }
        allocator = Locked(blocks)
        restoredImage = kept
    }

    deinit { close() }

    /// Closes every connection and releases the file (its flock). Later calls throw `.closed`.
    /// Waits for operations in flight on each connection. Idempotent. The file stays on
    /// disk; the next store opened on it discards its contents.
    public func close() {
        if isClosed.exchange(true, ordering: .acquiringAndReleasing) { return }
        writer.withLock { $0.close() }
        for reader in readers { reader.withLock { $0.close() } }
        file.closeDescriptor()
    }

    // MARK: allocation

    /// `count` free blocks, lowest numbers first; all or none. `.noSpace` past `capacityBlocks`.
    public func allocate(_ count: Int) throws(BackingError) -> [Int64] {
        guard count >= 0 else { throw .invalidArgument("cannot allocate \(count) blocks") }
        guard !isClosed.load(ordering: .acquiring) else { throw .closed }
        let blocks = allocator.withLock { $0.allocate(count) }
        guard let blocks else {
            let inUse = allocator.withLock { $0.inUse }
            throw .noSpace("backing store \(path) is full: \(inUse) of \(capacityBlocks ?? 0) blocks in use, \(count) more asked")
        }
        return blocks
    }

    /// Returns a block to the free pool. Its row stays in the file until the block is reused
    /// (the next write of that number replaces it): a discard costs no SQLite write.
    /// `.invalidArgument` for a block that is not allocated or is being written.
    public func free(_ block: Int64) throws(BackingError) {
        if let why = allocator.withLock({ $0.free(block) }) { throw .invalidArgument(why) }
    }

    // MARK: writes

    /// Writes `blocks[i]` from the contiguous buffer `pages` in one transaction: page i starts
    /// at `i * pageSize` and is `lengths[i]` bytes long (a whole page when `lengths` is nil;
    /// less for compressed writeback). Each block must be allocated and not yet written.
    ///
    /// All or nothing. On `.batchFailed` the transaction was rolled back and every block of
    /// the batch is back in the free pool — forget them, do not free them. On
    /// `.invalidArgument` (a contract violation, checked before any I/O) nothing changed.
    public func write(blocks: [Int64], pages: UnsafeRawBufferPointer, lengths: [Int]? = nil) throws(BackingError) {
        let pageSize = pageSize
        if let lengths, lengths.count != blocks.count {
            throw .invalidArgument("\(blocks.count) blocks but \(lengths.count) lengths")
        }
        for i in blocks.indices {
            let length = lengths?[i] ?? pageSize
            guard length >= 0, i * pageSize + length <= pages.count else {
                throw .invalidArgument("page \(i) (\(length) bytes at offset \(i * pageSize)) lies outside the \(pages.count)-byte buffer")
            }
        }
        try writeBatch(blocks: blocks) { i in
            UnsafeRawBufferPointer(rebasing: pages[(i * pageSize)..<(i * pageSize + (lengths?[i] ?? pageSize))])
        }
    }

    /// Allocates blocks for the pages in `pages` (laid out as in `write(blocks:pages:lengths:)`;
    /// `pages.count / pageSize` of them when `lengths` is nil), writes them in one transaction,
    /// and returns their numbers. On failure nothing stays allocated.
    public func writeNew(pages: UnsafeRawBufferPointer, lengths: [Int]? = nil) throws(BackingError) -> [Int64] {
        let count = lengths?.count ?? pages.count / pageSize
        if lengths == nil, pages.count % pageSize != 0 {
            throw .invalidArgument("\(pages.count) bytes is not a whole number of \(pageSize)-byte pages")
        }
        let blocks = try allocate(count)
        do {
            try write(blocks: blocks, pages: pages, lengths: lengths)
        } catch {
            if case .invalidArgument = error {
                for block in blocks { try? free(block) }
            }
            throw error
        }
        return blocks
    }

    private func writeBatch(blocks: [Int64], bytes: (Int) -> UnsafeRawBufferPointer) throws(BackingError) {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed }
        guard !blocks.isEmpty else { return }
        // Checks and checksums before any lock.
        var crcs: [Int64] = []
        var pages: [UnsafeRawBufferPointer] = []
        crcs.reserveCapacity(blocks.count)
        pages.reserveCapacity(blocks.count)
        for i in blocks.indices {
            let page = bytes(i)
            guard page.count >= 1, page.count <= pageSize, page.baseAddress != nil else {
                throw .invalidArgument("page for block \(blocks[i]) is \(page.count) bytes (1…\(pageSize))")
            }
            crcs.append(Self.checksum(block: blocks[i], page))
            pages.append(page)
        }
        if let why = allocator.withLock({ $0.beginWrite(blocks) }) { throw .invalidArgument(why) }

        let outcome: BackingError? = writer.withLock { conn -> BackingError? in
            do throws(BackingError) {
                try commit(blocks: blocks, crcs: crcs, pages: pages, on: &conn)
                return nil
            } catch {
                if conn.inTransaction { try? conn.exec("ROLLBACK") }
                // A vanished or unwritable file explains a SQLite error better than SQLite does.
                if case .closed = error { return error }
                if let why = file.problem(forWrite: true) { return .io(why + " (\(error.reason))") }
                return error
            }
        }
        allocator.withLock { $0.endWrite(blocks, committed: outcome == nil) }
        if let outcome {
            if case .closed = outcome {} else { noteFault(outcome.reason) }
            throw .batchFailed(blocks: blocks, cause: outcome)
        }
        writeUnits.add(Int64(blocks.count) * units, ordering: .relaxed)
    }

    /// The transaction itself; runs with the writer connection's lock held (and no other).
    private func commit(
        blocks: [Int64], crcs: [Int64], pages: [UnsafeRawBufferPointer], on conn: inout SQLiteConnection
    ) throws(BackingError) {
        guard conn.isOpen else { throw .closed }
        if let why = file.problem(forWrite: true) { throw .io(why) }
        try conn.run(try conn.statement("BEGIN IMMEDIATE"), "BEGIN")
        let insert = try conn.statement(Self.insertSQL)
        for i in blocks.indices {
            let page = pages[i]
            sqlite3_bind_int64(insert, 1, blocks[i])
            // SQLITE_STATIC (nil destructor): SQLite reads the caller's bytes during the step,
            // and `run` clears the binding before returning.
            sqlite3_bind_blob(insert, 2, page.baseAddress, Int32(page.count), nil)
            sqlite3_bind_int64(insert, 3, crcs[i])
            try conn.run(insert, "writing backing block \(blocks[i])")
        }
        try conn.run(try conn.statement("COMMIT"), "COMMIT")
    }

    // MARK: reads

    /// Reads `block` into `dst` and returns its length (pageSize, or less for compressed
    /// writeback). The bytes are checked against the stored crc32 first; a mismatch, a
    /// missing row or a SQLite error throws `.io` and leaves `dst` unspecified.
    /// `.notFound` for a block that was never written or has been freed.
    public func read(block: Int64, into dst: UnsafeMutableRawBufferPointer) throws(BackingError) -> Int {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed }
        guard allocator.withLock({ $0.state(block) }) == .written else { throw .notFound(block) }
        let result: Result<Int, BackingError> = withReader { conn in
            do throws(BackingError) {
                return .success(try fetch(block: block, into: dst, on: &conn))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let length):
            readUnits.add(units, ordering: .relaxed)
            return length
        case .failure(let error):
            if case .io(let why) = error {
                let explained = file.problem(forWrite: false).map { "\($0) (\(why))" } ?? why
                noteFault(explained)
                throw .io(explained)
            }
            throw error
        }
    }

    private func fetch(block: Int64, into dst: UnsafeMutableRawBufferPointer, on conn: inout SQLiteConnection)
        throws(BackingError) -> Int
    {
        guard conn.isOpen else { throw .closed }
        let select = try conn.statement(Self.selectSQL)
        defer {
            sqlite3_reset(select)
            sqlite3_clear_bindings(select)
        }
        sqlite3_bind_int64(select, 1, block)
        let rc = sqlite3_step(select)
        if rc == SQLITE_DONE {
            throw .io("backing block \(block) is missing from \(path) (file truncated or corrupt)")
        }
        guard rc == SQLITE_ROW else { throw conn.mapError(rc, "reading backing block \(block)") }
        let blob = sqlite3_column_blob(select, 0)
        let length = Int(sqlite3_column_bytes(select, 0))
        let stored = sqlite3_column_int64(select, 1)
        guard length >= 1, length <= pageSize, let blob else {
            throw .io("backing block \(block) in \(path) has \(length) bytes, not 1…\(pageSize) (file corrupt)")
        }
        let bytes = UnsafeRawBufferPointer(start: blob, count: length)
        let computed = Self.checksum(block: block, bytes)
        guard computed == stored else {
            throw .io("crc32 mismatch on backing block \(block) in \(path): stored \(stored), computed \(computed) (file corrupt)")
        }
        guard dst.count >= length else {
            throw .invalidArgument("buffer of \(dst.count) bytes is too small for backing block \(block) (\(length) bytes)")
        }
        dst.copyMemory(from: bytes)
        return length
    }

    /// Runs `body` on a read-only connection: round-robin over the pool, taking the first
    /// connection that is free right now; if all are busy, waits for the one the rotation
    /// points at. Only that connection's lock is held.
    private func withReader<R>(_ body: (inout SQLiteConnection) -> R) -> R {
        let start = nextReader.wrappingAdd(1, ordering: .relaxed).oldValue
        let n = readers.count
        for k in 0..<n {
            if let result = readers[(start &+ k) % n].withLockIfAvailable(body) { return result }
        }
        return readers[start % n].withLock(body)
    }

    // MARK: state

    /// zram's `bd_stat` counters.
    public var stats: Stats {
        let inUse = allocator.withLock { $0.inUse }
        return Stats(
            bdCount: inUse * units,
            bdReads: readUnits.load(ordering: .relaxed),
            bdWrites: writeUnits.load(ordering: .relaxed),
            blocksInUse: inUse)
    }

    /// The last fault seen (file removed, unwritable, corrupt, …), one line; nil while healthy.
    public var lastFaultReason: String? { lastFault.withLock { $0 } }

    /// Why the file cannot be written right now (removed, replaced, unwritable), or nil.
    package func healthProblem() -> String? {
        if isClosed.load(ordering: .acquiring) { return BackingError.closed.reason }
        return file.problem(forWrite: true)
    }

    /// Moves the WAL into the main file and truncates the WAL (also done automatically
    /// every ~1000 SQLite pages). Runs on the writer connection.
    package func checkpoint() throws(BackingError) {
        try writer.withLock { (conn: inout SQLiteConnection) throws(BackingError) in
            guard conn.isOpen else { throw .closed }
            try conn.exec("PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    private func noteFault(_ why: String) {
        lastFault.withLock { $0 = why }
    }

    /// zlib crc32 over the block number (8 bytes, little-endian) and then the data, so a row
    /// that ends up under another block number also fails the check.
    static func checksum(block: Int64, _ data: UnsafeRawBufferPointer) -> Int64 {
        var key = block.littleEndian
        var crc = withUnsafeBytes(of: &key) { crc32(0, $0.baseAddress!.assumingMemoryBound(to: Bytef.self), 8) }
        if let base = data.baseAddress {
            crc = crc32(crc, base.assumingMemoryBound(to: Bytef.self), uInt(data.count))
        }
        return Int64(crc)
    }
}

/// One read-only connection of the pool, behind its own lock.
typealias ReaderSlot = Locked<SQLiteConnection>
