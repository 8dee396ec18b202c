import CSQLite

/// One slot of a device image: where its page is (a block of the store) or what it is (a
/// same-fill word), as the device needs to point the slot at it again.
public struct ImageSlot: Sendable, Equatable {
    public var index: Int
    /// The block holding the page, or nil for a slot stored without one (same-filled).
    public var block: Int64?
    /// The device's value for a slot without a block (the same-fill word).
    public var value: UInt64
    public var size: Int
    /// The device's slot flags, opaque here.
    public var flags: UInt64
    public var priority: Int
    /// True for a page that was in memory when the image was saved (the device loads
    /// these back); false for one that was already written back.
    public var resident: Bool

    public init(index: Int, block: Int64?, value: UInt64, size: Int, flags: UInt64, priority: Int, resident: Bool) {
        self.index = index
        self.block = block
        self.value = value
        self.size = size
        self.flags = flags
        self.priority = priority
        self.resident = resident
    }
}

/// What a clean backing file held when the store opened it: the device's settings and slots.
public struct StoreImage: Sendable {
    public let meta: [String: String]
    public let slots: [ImageSlot]
}

/// Builds an image inside one transaction (`BackingStore.saveImage`).
public struct ImageWriter: ~Copyable {
    fileprivate let conn: OpaquePointer
    fileprivate let insertBlock: OpaquePointer
    fileprivate let insertSlot: OpaquePointer
    fileprivate let store: BackingStore
    fileprivate var blocks: [Int64] = []

    /// Stores `bytes` (1…pageSize) in a new block of the image and returns its number.
    public mutating func page(_ bytes: UnsafeRawBufferPointer) throws(BackingError) -> Int64 {
        guard bytes.count >= 1, bytes.count <= store.pageSize, let base = bytes.baseAddress else {
            throw .invalidArgument("an image page of \(bytes.count) bytes (1…\(store.pageSize))")
        }
        let block = try store.allocate(1)[0]
        blocks.append(block)
        sqlite3_bind_int64(insertBlock, 1, block)
        sqlite3_bind_blob(insertBlock, 2, base, Int32(bytes.count), nil)
        sqlite3_bind_int64(insertBlock, 3, BackingStore.checksum(block: block, bytes))
        try step(insertBlock, "writing image block \(block)")
        return block
    }

    /// Records one slot.
    public func slot(_ slot: ImageSlot) throws(BackingError) {
        sqlite3_bind_int64(insertSlot, 1, Int64(slot.index))
        if let block = slot.block { sqlite3_bind_int64(insertSlot, 2, block) } else { sqlite3_bind_null(insertSlot, 2) }
        sqlite3_bind_int64(insertSlot, 3, Int64(bitPattern: slot.value))
        sqlite3_bind_int64(insertSlot, 4, Int64(slot.size))
        sqlite3_bind_int64(insertSlot, 5, Int64(bitPattern: slot.flags))
        sqlite3_bind_int64(insertSlot, 6, Int64(slot.priority))
        sqlite3_bind_int64(insertSlot, 7, slot.resident ? 1 : 0)
        try step(insertSlot, "writing image slot \(slot.index)")
    }

    private func step(_ stmt: OpaquePointer, _ what: String) throws(BackingError) {
        let rc = sqlite3_step(stmt)
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        guard rc == SQLITE_DONE else {
            let line = "\(what): \(String(cString: sqlite3_errmsg(conn))) (sqlite \(rc))"
            throw rc & 0xFF == SQLITE_FULL ? .noSpace(line) : .io(line)
        }
    }
}

/// A device image in the backing file (`--persist`): the pages that were in memory, copied
/// as stored (compressed, no recompression), beside those already written back, with every
/// slot and the device's settings, written in one transaction that also marks the file
/// clean. A store opened on a clean file may keep it (`restoring:`), and marks it unclean
/// before anything else happens, so a crash at any later point leaves a file that the
/// next start discards rather than misreads.
extension BackingStore {
    static let imageSchema = [
        "CREATE TABLE IF NOT EXISTS image_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS image_slots(slot INTEGER PRIMARY KEY, block INTEGER, value INTEGER NOT NULL, "
            + "size INTEGER NOT NULL, flags INTEGER NOT NULL, priority INTEGER NOT NULL, resident INTEGER NOT NULL)",
    ]

    /// Writes an image in one transaction: `build` adds pages and slots; `meta` is stored
    /// with `clean=1`. Blocks written before keep their contents (the slots say which stay).
    /// The commit is synchronous (`synchronous=FULL`) and the WAL is checkpointed after.
    /// On failure nothing of the image is kept and the file stays unclean.
    public func saveImage(meta: [String: String], build: (inout ImageWriter) throws(BackingError) -> Void) throws(BackingError) {
        guard !isClosed.load(ordering: .acquiring) else { throw .closed }
        var written: [Int64] = []
        let outcome: BackingError? = writer.withLock { conn -> BackingError? in
            do throws(BackingError) {
                guard let db = conn.db else { throw .closed }
                try conn.exec("PRAGMA synchronous = FULL")
                for sql in Self.imageSchema { try conn.exec(sql) }
                try conn.exec("BEGIN IMMEDIATE")
                try conn.exec("DELETE FROM image_slots; DELETE FROM image_meta")
                var image = ImageWriter(
                    conn: db, insertBlock: try conn.statement(Self.insertSQL),
                    insertSlot: try conn.statement(
                        "INSERT INTO image_slots(slot, block, value, size, flags, priority, resident) "
                            + "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
                    store: self)
                do throws(BackingError) {
                    try build(&image)
                } catch {
                    written = image.blocks
                    throw error
                }
                written = image.blocks
                let setMeta = try conn.statement("INSERT OR REPLACE INTO image_meta(key, value) VALUES (?1, ?2)")
                for (key, value) in meta.merging(["clean": "1"], uniquingKeysWith: { _, clean in clean }) {
                    sqlite3_bind_text(setMeta, 1, key, -1, sqliteTransient)
                    sqlite3_bind_text(setMeta, 2, value, -1, sqliteTransient)
                    try conn.run(setMeta, "writing image meta \(key)")
                }
                try conn.exec("COMMIT")
                _ = try? conn.queryText("PRAGMA wal_checkpoint(TRUNCATE)")
                return nil
            } catch {
                if conn.inTransaction { try? conn.exec("ROLLBACK") }
                return error
            }
        }
        allocatorAdoptImageBlocks(written, committed: outcome == nil)
        if let outcome { throw outcome }
        writeUnits.add(Int64(written.count) * units, ordering: .relaxed)
    }

    /// The clean image at `path`, if `accept` takes it.
    static func image(at path: String, _ accept: (StoreImage) -> ImageRefusal?) -> Result<StoreImage, ImageRefusal> {
        do throws(BackingError) {
            let conn = try SQLiteConnection(path: path, readOnly: false)
            switch try readImage(conn) {
            case .success(let image): return accept(image).map { .failure($0) } ?? .success(image)
            case .failure(let why): return .failure(why)
            }
        } catch {
            return .failure(ImageRefusal("it cannot be read: \(error.reason)"))
        }
    }

    /// Marks a restored file unclean, before anything else writes it: from here a crash leaves
    /// a file the next start discards. Blocks no slot refers to are dropped.
    static func beginRestore(on conn: borrowing SQLiteConnection) throws(BackingError) {
        try conn.exec("PRAGMA synchronous = FULL")
        try conn.exec("BEGIN IMMEDIATE")
        do throws(BackingError) {
            try conn.exec("DELETE FROM blocks WHERE block NOT IN (SELECT block FROM image_slots WHERE block IS NOT NULL)")
            try conn.exec("UPDATE image_meta SET value = '0' WHERE key = 'clean'")
            try conn.exec("DELETE FROM image_slots")
            try conn.exec("COMMIT")
        } catch {
            try? conn.exec("ROLLBACK")
            throw error
        }
    }

    /// Records the blocks an image transaction wrote: kept when it committed, freed otherwise.
    func allocatorAdoptImageBlocks(_ blocks: [Int64], committed: Bool) {
        guard !blocks.isEmpty else { return }
        allocator.withLock { allocator in
            _ = allocator.beginWrite(blocks)
            allocator.endWrite(blocks, committed: committed)
        }
    }

    /// Reads the image of a file whose previous run saved one, if it is clean.
    /// - Returns: the image, or why it cannot be used.
    static func readImage(_ conn: borrowing SQLiteConnection) throws(BackingError) -> Result<StoreImage, ImageRefusal> {
        guard try conn.queryText("SELECT count(*) FROM sqlite_master WHERE name = 'image_meta'") == "1" else {
            return .failure(ImageRefusal("it holds no image (the server was not stopped with --persist)"))
        }
        var meta: [String: String] = [:]
        try conn.forEachRow("SELECT key, value FROM image_meta") { stmt in
            meta[String(cString: sqlite3_column_text(stmt, 0))] = String(cString: sqlite3_column_text(stmt, 1))
        }
        guard meta["clean"] == "1" else {
            return .failure(ImageRefusal("it is not clean (the server did not finish a --persist shutdown)"))
        }
        var slots: [ImageSlot] = []
        try conn.forEachRow("SELECT slot, block, value, size, flags, priority, resident FROM image_slots ORDER BY slot") { stmt in
            slots.append(
                ImageSlot(
                    index: Int(sqlite3_column_int64(stmt, 0)),
                    block: sqlite3_column_type(stmt, 1) == SQLITE_NULL ? nil : sqlite3_column_int64(stmt, 1),
                    value: UInt64(bitPattern: sqlite3_column_int64(stmt, 2)), size: Int(sqlite3_column_int64(stmt, 3)),
                    flags: UInt64(bitPattern: sqlite3_column_int64(stmt, 4)), priority: Int(sqlite3_column_int64(stmt, 5)),
                    resident: sqlite3_column_int64(stmt, 6) != 0))
        }
        return .success(StoreImage(meta: meta, slots: slots))
    }
}

/// SQLite's SQLITE_TRANSIENT (a macro Swift does not import): SQLite copies the bound bytes.
private let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// Why a backing file's image is not used; it goes into the store's open report.
public struct ImageRefusal: Error, Sendable {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
}
