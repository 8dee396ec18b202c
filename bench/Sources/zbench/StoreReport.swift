import Foundation
import ZComp

/// `zbench store`: prints the tables and returns what goes into store.json.
func runStoreBench(corpus: CorpusFile, corpusPath: String, only: Set<String>?, withMemory: Bool) throws -> [String: Any] {
    let bench = StoreBench(corpus: corpus)
    var results: [String: Any] = ["corpus": corpusPath, "pages": corpus.pageCount, "copies_for_memory": bench.copies]
    var speedRows: [[String: Any]] = []

    print("zbench store: \(corpus.pageCount) corpus pages; raw codec vs codec + allocator (MB/s of pages)")
    print("algorithm  thr  ratio  raw-comp  store-fill  f/raw  store-overwrite  o/raw  raw-decomp  store-read  r/raw")
    for (name, level) in [("lz4", nil), ("lzo", nil), ("zstd", 1), ("zstd", nil), ("lz4hc", nil), ("deflate", nil)] as [(String, Int?)] {
        let codec = try Codecs.make(name, params: CodecParams(level: level))
        let label = level.map { "\(name)-\($0)" } ?? name
        if let only, !only.contains(label) { continue }
        for threads in [1, 2] {
            let raw = try bench.rawSpeed(codec, threads: threads)
            let store = try bench.storeSpeed(codec, threads: threads)
            let row: [String: Any] = [
                "algorithm": label, "threads": threads, "ratio": raw.ratio,
                "raw_compress_mb_s": raw.compress, "raw_decompress_mb_s": raw.decompress,
                "store_fill_mb_s": store.fill, "store_overwrite_mb_s": store.overwrite, "store_read_mb_s": store.read,
                "store_fill_vs_raw": store.fill / raw.compress, "store_overwrite_vs_raw": store.overwrite / raw.compress,
                "store_read_vs_raw": store.read / raw.decompress,
            ]
            speedRows.append(row)
            print(
                String(
                    format: "%-10@ %3d  %5.2f  %8.0f  %10.0f  %5.2f  %15.0f  %5.2f  %10.0f  %10.0f  %5.2f",
                    label as NSString, threads, raw.ratio, raw.compress, store.fill, store.fill / raw.compress,
                    store.overwrite, store.overwrite / raw.compress, raw.decompress, store.read, store.read / raw.decompress))
            if label == "lz4", threads == 1 {
                results["store_write_vs_raw_lz4"] = store.fill / raw.compress
                results["store_overwrite_vs_raw_lz4"] = store.overwrite / raw.compress
                results["store_read_vs_raw_lz4"] = store.read / raw.decompress
            }
        }
    }
    results["speed"] = speedRows

    print("\nmemory with the corpus stored \(bench.copies)× (mem_used / compressed bytes)")
    print("setup          fill    churn   compact   RSS: store-fill  store-compact  malloc-fill  malloc-churn")
    var memoryRows: [String: Any] = [:]
    for (label, name, level, chain) in [("lz4-chain8", "lz4", nil, 8), ("lz4-chain4", "lz4", nil, 4), ("zstd1-chain8", "zstd", 1, 8)]
        as [(String, String, Int?, Int)] where withMemory
    {
        let m = try bench.memory(try Codecs.make(name, params: CodecParams(level: level)), maxChain: chain)
        memoryRows[label] = m
        print(
            String(
                format: "%-13@ %6.4f  %6.4f  %7.4f   %15.4f  %13.4f  %11.4f  %12.4f", label as NSString,
                m["mem_over_compressed_after_fill"]!, m["mem_over_compressed_after_churn"]!,
                m["mem_over_compressed_after_compact"]!, m["store_rss_over_compressed_after_fill"]!,
                m["store_rss_over_compressed_after_compact"]!, m["malloc_design_over_compressed"]!,
                m["malloc_design_over_compressed_after_churn"]!))
        if label == "lz4-chain8" {
            for key in [
                "mem_over_compressed_after_fill", "mem_over_compressed_after_churn",
                "mem_over_compressed_after_compact", "malloc_design_over_compressed",
                "malloc_design_over_compressed_after_churn",
            ] {
                results[key] = m[key]
            }
        }
    }
    results["memory"] = memoryRows

    return results
}
