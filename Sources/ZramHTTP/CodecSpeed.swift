import ZramDevice

/// Which primary algorithms write a page inline on the HTTP thread.
///
/// The cut-off is the suspend/resume hand-off to a worker, about 15 µs of CPU per request
/// (docs/HTTP_ENGINE.md): work well under it runs inline, anything near or above it is
/// offloaded, since an inline request holds a polling thread other connections wait on.
/// Per 4 KiB corpus page (`make bench-store`): lz4 ≈ 4.5 µs and lzo ≈ 4.7 µs — inline;
/// zstd-1 ≈ 13 µs, zstd-3 ≈ 14 µs, lz4hc ≈ 70 µs, deflate ≈ 75 µs, zstd-19 ≈ 2 ms —
/// offloaded. Decompression of every algorithm is under 12 µs and stays inline unless the
/// page is in SQLite.
enum CodecSpeed {
    static func compressesInline(_ choice: AlgorithmChoice) -> Bool {
        choice.name == "lz4" || choice.name == "lzo"
    }
}
