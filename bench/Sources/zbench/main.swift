import Foundation

// zbench — zramd's benchmarks: `zbench store|device --corpus PAGES --out JSON`.

func usage() -> Never {
    let text =
        "usage: zbench store --corpus PATH --out PATH [--only lz4,zstd-1] [--no-memory]\n"
        + "       zbench device --corpus PATH --out PATH\n"
    FileHandle.standardError.write(text.data(using: .utf8)!)
    exit(2)
}

let args = CommandLine.arguments
guard args.count >= 2, ["store", "device"].contains(args[1]) else { usage() }
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
guard let corpusPath = option("--corpus"), let outPath = option("--out") else { usage() }
let corpus = CorpusFile(path: corpusPath)

let results: [String: Any]
if args[1] == "device" {
    results = try runDeviceBench(corpus: corpus, corpusPath: corpusPath)
} else {
    // `--only lz4,zstd-1` limits the speed table (for profiling); `--no-memory` skips the memory part.
    results = try runStoreBench(
        corpus: corpus, corpusPath: corpusPath,
        only: option("--only").map { Set($0.split(separator: ",").map(String.init)) },
        withMemory: !args.contains("--no-memory"))
}
let json = try JSONSerialization.data(withJSONObject: results, options: [.prettyPrinted, .sortedKeys])
try json.write(to: URL(fileURLWithPath: outPath))
print("\nwrote \(outPath)")
