import ArgumentParser
import Foundation
import Glibc

/// `HOST:PORT`, `[IPv6]:PORT` or `:PORT`.
struct ListenAddress {
    let host: String
    let port: UInt16

    init(_ text: String) throws {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ValidationError("--listen \(text): expected HOST:PORT")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "0.0.0.0" : host
        self.port = port
    }
}

extension ListenAddress {
    /// `--nbd-listen`: HOST:PORT, [IPv6]:PORT, :PORT, or a bare HOST for NBD's port 10809.
    init(nbd text: String) throws {
        let bracketed = text.hasPrefix("[") && text.hasSuffix("]")
        let bareHost = !text.isEmpty && (bracketed || !text.contains(":") || (text.filter { $0 == ":" }.count > 1 && !text.hasPrefix("[")))
        try self.init(bareHost ? (text.contains(":") && !bracketed ? "[\(text)]" : text) + ":10809" : text)
    }
}

enum Secrets {
    /// The token in `file` (trimmed), else in the environment variable, else none.
    static func token(file: String?, environment: String) throws -> String? {
        if let file {
            guard let handle = fopen(file, "r") else { throw ValidationError("cannot read token file \(file): \(String(cString: strerror(errno)))") }
            defer { fclose(handle) }
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = fread(&buffer, 1, buffer.count - 1, handle)
            let token = String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty else { throw ValidationError("token file \(file) is empty") }
            return token
        }
        return getenv(environment).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Creates `path` (and its parents) unless it exists.
    static func makeDirectory(_ path: String) throws {
        var built = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            built += "/" + part
            if mkdir(built, 0o750) != 0 && errno != EEXIST {
                throw ValidationError("cannot create --data-dir \(path): \(String(cString: strerror(errno)))")
            }
        }
    }
}

/// SIGTERM and SIGINT, blocked in every thread and waited for by the main thread.
struct ShutdownSignals {
    private var set = sigset_t()

    /// Blocks the signals; call before any thread starts so all of them inherit the mask.
    init() {
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Sleeps until one arrives; returns its name.
    func wait() -> String {
        var signal: Int32 = 0
        var set = self.set
        sigwait(&set, &signal)
        return signal == SIGTERM ? "SIGTERM" : "SIGINT"
    }
}

/// glibc's `mallopt`, which the Glibc module does not import.
@_silgen_name("mallopt")
private func mallopt(_ parameter: Int32, _ value: Int32) -> Int32

enum MallocTuning {
    /// Keeps batch-sized buffers (request bodies and responses of up to `bytes`, at most
    /// 1 MiB) on the heap.
    ///
    /// By default glibc serves each 256 KiB batch buffer with its own mmap, or trims the heap
    /// after freeing it, so every batch request page-faults and zeroes its buffer again.
    /// Raising the mmap and trim thresholds keeps freed buffers for reuse. The cap bounds what
    /// is kept: larger bodies (up to --max-batch-pages) are mapped and unmapped each time, so
    /// a burst of them gives its memory back when it ends (40 × 16 MiB bodies once left
    /// ~500 MB resident with the threshold at 16 MiB).
    static func keepBuffers(upTo bytes: Int) {
        let threshold = Int32(clamping: min(max(bytes, 128 << 10), 1 << 20) + 4096)
        _ = mallopt(-3, threshold)  // M_MMAP_THRESHOLD
        _ = mallopt(-1, threshold * 4)  // M_TRIM_THRESHOLD
    }
}
