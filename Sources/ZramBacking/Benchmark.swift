import CSQLite
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The baseline of the device benchmark (`zbench device`): the cheapest thing SQLite can
/// do with the rows writeback writes, a bare batched insert loop on the store's schema.
public enum BackingBenchmark {
    public struct Result: Sendable, CustomStringConvertible {
        public var label: String
        public var pages: Int
        public var seconds: Double
        public var pagesPerSecond: Double { seconds > 0 ? Double(pages) / seconds : 0 }
        public var description: String {
            "\(label): \(pages) pages in \(Int((seconds * 1000).rounded())) ms = \(Int(pagesPerSecond.rounded())) pages/s"
        }
    }

    /// Bare SQLite: a fresh file with the store's schema and pragmas, `INSERT INTO blocks`
    /// of `count` pages (cycled from `source`, whole pages) in transactions of `batchSize`,
    /// no checksum, no allocator, no fault checks. The file is deleted first.
    public static func rawInserts(
        path: String, source: UnsafeRawBufferPointer, pageSize: Int, count: Int, batchSize: Int,
        synchronous: String = "OFF"
    ) throws(BackingError) -> Result {
        removeFiles(path)
        defer { removeFiles(path) }
        var conn = try SQLiteConnection(path: path, readOnly: false)
        try conn.exec("CREATE TABLE blocks(block INTEGER PRIMARY KEY, data BLOB NOT NULL, crc INTEGER NOT NULL)")
        _ = try conn.queryText("PRAGMA journal_mode = WAL")
        try conn.exec("PRAGMA synchronous = \(synchronous)")
        let insert = try conn.statement("INSERT INTO blocks(block, data, crc) VALUES (?1, ?2, 0)")
        let begin = try conn.statement("BEGIN IMMEDIATE")
        let commit = try conn.statement("COMMIT")
        let available = source.count / pageSize
        guard available > 0 else { throw .invalidArgument("source holds no whole page") }
        let clock = ContinuousClock()
        let start = clock.now
        var block: Int64 = 1
        var done = 0
        while done < count {
            try conn.run(begin, "BEGIN")
            for _ in 0..<min(batchSize, count - done) {
                let offset = (Int(block - 1) % available) * pageSize
                sqlite3_bind_int64(insert, 1, block)
                sqlite3_bind_blob(insert, 2, source.baseAddress! + offset, Int32(pageSize), nil)
                try conn.run(insert, "insert")
                block += 1
                done += 1
            }
            try conn.run(commit, "COMMIT")
        }
        let elapsed = clock.now - start
        conn.close()
        return Result(label: "raw inserts, batch \(batchSize)", pages: count, seconds: seconds(elapsed))
    }

    private static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    private static func removeFiles(_ path: String) {
        for suffix in ["", "-wal", "-shm", "-journal"] { _ = unlink(path + suffix) }
    }
}
