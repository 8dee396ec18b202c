import Glibc

/// Timing and memory readings for the benchmarks.
enum Measure {
    /// Monotonic nanoseconds.
    static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts.tv_sec * 1_000_000_000 + ts.tv_nsec
    }

    /// Seconds `body` takes.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = now()
        try body()
        return Double(now() - start) / 1e9
    }

    /// Resident set size of this process in bytes (`/proc/self/statm`).
    static func rss() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var size = 0, resident = 0
        _ = withUnsafeMutablePointer(to: &size) { s in
            withUnsafeMutablePointer(to: &resident) { r in
                withVaList([s, r]) { vfscanf(file, "%ld %ld", $0) }
            }
        }
        return resident * sysconf(Int32(_SC_PAGESIZE))
    }

    /// The median of `values`.
    static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    /// Runs `body(t)` on `threads` pthreads at once and waits for all of them.
    static func onThreads(_ threads: Int, _ body: (Int) -> Void) {
        // The threads are joined before this returns, so `body` never outlives the call.
        final class Job: @unchecked Sendable {
            let body: (Int) -> Void
            let index: Int
            init(_ body: @escaping (Int) -> Void, _ index: Int) { self.body = body; self.index = index }
        }
        withoutActuallyEscaping(body) { body in
            var ids: [pthread_t] = []
            for t in 0..<threads {
                var id = pthread_t()
                let job = Unmanaged.passRetained(Job(body, t)).toOpaque()
                pthread_create(
                    &id, nil,
                    { raw in
                        let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                        job.body(job.index)
                        return nil
                    }, job)
                ids.append(id)
            }
            for id in ids { pthread_join(id, nil) }
        }
    }
}

/// The page corpus, loaded whole.
struct CorpusFile {
    let bytes: UnsafeMutableRawBufferPointer
    let pageSize = 4096
    var pageCount: Int { bytes.count / pageSize }

    init(path: String) {
        guard let file = fopen(path, "rb") else { fatalError("cannot open corpus \(path): run `make bench-store`") }
        defer { fclose(file) }
        fseek(file, 0, SEEK_END)
        let size = ftell(file)
        fseek(file, 0, SEEK_SET)
        bytes = .allocate(byteCount: size, alignment: 4096)
        guard fread(bytes.baseAddress, 1, size, file) == size else { fatalError("short read of \(path)") }
    }

    func page(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[(i * pageSize)..<((i + 1) * pageSize)])
    }
}

/// glibc's `malloc_trim`, which the Glibc module does not import: gives free heap memory back.
@_silgen_name("malloc_trim")
func malloc_trim(_ pad: Int) -> Int32
