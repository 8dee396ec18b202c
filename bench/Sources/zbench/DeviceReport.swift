import Foundation

/// `zbench device`: prints the results and returns what goes into device.json.
func runDeviceBench(corpus: CorpusFile, corpusPath: String) throws -> [String: Any] {
    let bench = DeviceBench(corpus: corpus)
    var results: [String: Any] = ["corpus": corpusPath, "pages": corpus.pageCount]
    print("zbench device: \(corpus.pageCount) corpus pages, lz4, one thread, medians of \(bench.rounds) rounds")
    let io = try bench.pageIO()
    print(
        String(
            format: "device write %.0f MB/s vs store %.0f MB/s: %.2f×",
            io["device_write_mb_s"]!, io["store_write_mb_s"]!, io["device_write_vs_store"]!))
    print(
        String(
            format: "device read  %.0f MB/s vs store %.0f MB/s: %.2f×",
            io["device_read_mb_s"]!, io["store_read_mb_s"]!, io["device_read_vs_store"]!))
    let wb = try bench.writeback()
    print(
        String(
            format: "writeback %.0f pages/s vs bare SQLite inserts %.0f pages/s (batch 32): %.2f×",
            wb["writeback_pages_per_s"]!, wb["raw_sqlite_inserts_per_s"]!, wb["writeback_vs_raw_sqlite"]!))
    let rc = try bench.recompress()
    print(
        String(
            format: "recompress lz4 → zstd: %.0f pages/s, compr_data_size %.1f %% smaller",
            rc["recompress_pages_per_s"]!, 100 * rc["recompress_compr_data_size_saved"]!))
    for part in [io, wb, rc] { results.merge(part) { $1 } }
    return results
}
