import ZramDevice

/// Which primary algorithms write a page inline on the HTTP thread.
///
/// The cut-off is the suspend/resume hand-off to a worker (see docs/ARCHITECTURE.md):
/// work that costs less than about 20 µs a page runs inline; above it a request could
/// hold a polling thread that other connections wait on. Measured per 4 KiB page on the
/// corpus (`make bench-store`): lz4 ≈ 4.5 µs, lzo ≈ 4.7 µs, zstd-1 ≈ 13 µs, zstd-3 ≈ 14 µs
/// — inline; lz4hc ≈ 70 µs, deflate ≈ 75 µs, zstd-19 ≈ 2 ms — offloaded. Decompression
/// of every algorithm is under 12 µs and always inline, unless the page is in SQLite.
enum CodecSpeed {
    static func compressesInline(_ choice: AlgorithmChoice) -> Bool {
        switch choice.name {
        case "lz4", "lzo": true
        case "zstd": (choice.params.level ?? 3) <= 3
        default: false
        }
    }
}
