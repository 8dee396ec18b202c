import ZSync
import CSQLite

/// One SQLite connection and its prepared statements. Noncopyable: it closes itself
/// when dropped, and lives inside exactly one `Locked`, which is what makes the
/// `SQLITE_OPEN_NOMUTEX` ("multi-thread") mode safe — no two threads ever use it at once.
struct SQLiteConnection: ~Copyable {
    private(set) var db: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    let path: String

    /// Opens `path`; `readOnly` connections never write the file.
    init(path: String, readOnly: Bool) throws(BackingError) {
        self.path = path
        var handle: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE))
            | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_PRIVATECACHE
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw .io("cannot open backing file \(path): \(message)")
        }
        db = handle
        sqlite3_extended_result_codes(handle, 1)
        // Readers in WAL mode practically never wait; this only covers WAL recovery and
        // checkpoint-restart edge cases.
        sqlite3_busy_timeout(handle, 5000)
    }

    deinit {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        if let db { sqlite3_close_v2(db) }
    }

    var isOpen: Bool { db != nil }

    mutating func close() {
        for (_, stmt) in statements { sqlite3_finalize(stmt) }
        statements = [:]
        if let db { sqlite3_close_v2(db) }
        db = nil
    }

    /// Runs SQL that returns no rows we need (PRAGMAs, DDL).
    func exec(_ sql: String) throws(BackingError) {
        guard let db else { throw .closed }
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_free(errmsg)
            throw mapError(rc, "\(sql.prefix(40))", message: message)
        }
    }

    /// The first column of the first row of `sql` as text (for PRAGMAs that answer).
    func queryText(_ sql: String) throws(BackingError) -> String? {
        guard let db else { throw .closed }
        var stmt: OpaquePointer?
        var rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        guard rc == SQLITE_OK, let stmt else { throw mapError(rc, "prepare \(sql)") }
        rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return sqlite3_column_text(stmt, 0).map { String(cString: $0) } }
        if rc == SQLITE_DONE { return nil }
        throw mapError(rc, sql)
    }

    /// Calls `body` with each row of `sql`.
    func forEachRow(_ sql: String, _ body: (OpaquePointer) -> Void) throws(BackingError) {
        guard let db else { throw .closed }
        var stmt: OpaquePointer?
        var rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        defer { sqlite3_finalize(stmt) }
        guard rc == SQLITE_OK, let stmt else { throw mapError(rc, "prepare \(sql)") }
        while true {
            rc = sqlite3_step(stmt)
            guard rc == SQLITE_ROW else { break }
            body(stmt)
        }
        guard rc == SQLITE_DONE else { throw mapError(rc, sql) }
    }

    /// A cached prepared statement (reset and unbound before it is handed out again).
    mutating func statement(_ sql: String) throws(BackingError) -> OpaquePointer {
        if let stmt = statements[sql] { return stmt }
        guard let db else { throw .closed }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw mapError(rc, "prepare \(sql)") }
        statements[sql] = stmt
        return stmt
    }

    /// Steps a statement that returns no row, then resets it.
    func run(_ stmt: OpaquePointer, _ what: @autoclosure () -> String) throws(BackingError) {
        let rc = sqlite3_step(stmt)
        let failure = rc == SQLITE_DONE ? nil : mapError(rc, what())
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        if let failure { throw failure }
    }

    var inTransaction: Bool { db.map { sqlite3_get_autocommit($0) == 0 } ?? false }

    /// Maps a SQLite result code onto a `BackingError` with a one-line reason.
    func mapError(_ rc: Int32, _ what: String, message: String? = nil) -> BackingError {
        let text = message ?? db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
        let line = "\(what) on \(path): \(text) (sqlite \(rc))"
        switch rc & 0xFF {
        case SQLITE_FULL: return .noSpace(line)
        case SQLITE_MISUSE: return .invalidArgument(line)
        default: return .io(line)
        }
    }
}
