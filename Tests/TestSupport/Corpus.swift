import Foundation

/// The page corpus the tests and benchmarks share (`../shared/corpus/pages-a.bin.zst`, decompressed).
///
/// `make test` decompresses it to `.corpus/pages-a.bin` and exports `ZRAMD_CORPUS`;
/// a test run without it fails with a message that says how to get it.
public struct Corpus: Sendable {
    public static let pageSize = 4096
    /// All pages, concatenated.
    public let bytes: [UInt8]
    public var pageCount: Int { bytes.count / Corpus.pageSize }

    /// The corpus, loaded once per process.
    public static let shared: Corpus = {
        let path =
            ProcessInfo.processInfo.environment["ZRAMD_CORPUS"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.corpus/pages-a.bin").standardized.path
        guard let data = FileManager.default.contents(atPath: path), data.count % pageSize == 0, !data.isEmpty else {
            fatalError("corpus not found at \(path): run `make test`, or `zstd -d ../shared/corpus/pages-a.bin.zst -o .corpus/pages-a.bin`")
        }
        return Corpus(bytes: [UInt8](data))
    }()

    /// Calls `body` with page `index` as a raw buffer.
    public func withPage<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes { all in
            try body(UnsafeRawBufferPointer(rebasing: all[index * Corpus.pageSize..<(index + 1) * Corpus.pageSize]))
        }
    }

    /// Page `index` as an array (for tests that keep a reference copy).
    public func page(_ index: Int) -> [UInt8] {
        Array(bytes[index * Corpus.pageSize..<(index + 1) * Corpus.pageSize])
    }
}

/// A small deterministic generator (SplitMix64) so model tests replay exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
