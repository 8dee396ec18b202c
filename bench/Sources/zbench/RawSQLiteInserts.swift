import CSQLite
import Glibc

/// The baseline of the device benchmark's writeback row: the cheapest thing SQLite can do
/// with the rows writeback writes — a bare batched insert loop on the backing store's
/// schema, with no checksum, no allocator and no fault checks.
enum RawSQLiteInserts {
    enum Failure: Error { case sqlite(String) }

    /// Pages per second inserting `count` pages (cycled from `source`, whole pages) into a
    /// fresh WAL file at `path`, in transactions of `batchSize`. The files are removed before
    /// and after.
    static func pagesPerSecond(
        path: String, source: UnsafeRawBufferPointer, pageSize: Int, count: Int,
        batchSize: Int
    ) throws -> Double {
        removeFiles(path)
        defer { removeFiles(path) }
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK, let db else { throw Failure.sqlite("cannot open \(path)") }
        defer { sqlite3_close_v2(db) }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw Failure.sqlite(String(cString: sqlite3_errmsg(db))) }
        }
        try exec("CREATE TABLE blocks(block INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL)")
        try exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF")
        var insert: OpaquePointer?
        guard sqlite3_prepare_v2(db, "INSERT INTO blocks(block, data, crc) VALUES (?1, ?2, 0)", -1, &insert, nil) == SQLITE_OK,
            let insert
        else { throw Failure.sqlite(String(cString: sqlite3_errmsg(db))) }
        defer { sqlite3_finalize(insert) }
        let available = source.count / pageSize
        guard available > 0 else { throw Failure.sqlite("the source holds no whole page") }
        let seconds = try Measure.seconds {
            var block: Int64 = 1
            while block <= Int64(count) {
                try exec("BEGIN IMMEDIATE")
                for _ in 0..<min(batchSize, count - Int(block) + 1) {
                    sqlite3_bind_int64(insert, 1, block)
                    sqlite3_bind_blob(insert, 2, source.baseAddress! + (Int(block - 1) % available) * pageSize, Int32(pageSize), nil)
                    guard sqlite3_step(insert) == SQLITE_DONE else { throw Failure.sqlite(String(cString: sqlite3_errmsg(db))) }
                    sqlite3_reset(insert)
                    block += 1
                }
                try exec("COMMIT")
            }
        }
        return Double(count) / seconds
    }

    private static func removeFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { _ = unlink(path + suffix) }
    }
}
