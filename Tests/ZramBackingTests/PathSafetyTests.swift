import ZSync
import Foundation
import Testing
import Synchronization
import ZramBacking
import ZramTestSupport

@Suite("backing_dev path safety")
struct PathSafetyTests {
    func canonical(_ path: String) -> String { URL(fileURLWithPath: path).resolvingSymlinksInPath().path }

    @Test("names inside the data dir are accepted and made absolute")
    func accepted() throws {
        let dir = TempDir()
        let root = canonical(dir.path)
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: false)
        #expect(try BackingStore.resolve(name: "zram0.db", inDataDir: dir.path) == root + "/zram0.db")
        #expect(try BackingStore.resolve(name: "./zram0.db", inDataDir: dir.path) == root + "/zram0.db")
        #expect(try BackingStore.resolve(name: "sub/zram1.db", inDataDir: dir.path) == root + "/sub/zram1.db")
        #expect(try BackingStore.resolve(name: "sub//zram1.db", inDataDir: dir.path + "/") == root + "/sub/zram1.db")
        #expect(try BackingStore.resolve(name: root + "/zram0.db", inDataDir: dir.path) == root + "/zram0.db")
        #expect(try BackingStore.resolve(name: dir.path + "/sub/x", inDataDir: dir.path) == root + "/sub/x")
        // A link that stays inside is followed.
        _ = FileManager.default.createFile(atPath: dir.file("sub/real.db"), contents: nil)
        try FileManager.default.createSymbolicLink(atPath: dir.file("alias.db"), withDestinationPath: "sub/real.db")
        #expect(try BackingStore.resolve(name: "alias.db", inDataDir: dir.path) == root + "/sub/real.db")
        #expect(try BackingStore.resolve(name: "..data", inDataDir: dir.path) == root + "/..data")
    }

    @Test(
        "escapes and nonsense are EINVAL",
        arguments: [
            "", "..", "../x.db", "sub/../../x.db", "a/../b.db", "/etc/passwd", "/tmp/x.db", "x\u{0}.db",
            ".", "./", "sub/", "missing/x.db", "sub", "out", "out/x.db", "dangling.db", "walout.db", "self",
        ])
    func refused(name: String) throws {
        let dir = TempDir()
        try FileManager.default.createDirectory(atPath: dir.file("sub"), withIntermediateDirectories: false)
        let outside = TempDir()
        try FileManager.default.createSymbolicLink(atPath: dir.file("out"), withDestinationPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: dir.file("dangling.db"), withDestinationPath: "/nonexistent/z.db")
        _ = FileManager.default.createFile(atPath: dir.file("walout.db"), contents: nil)
        try FileManager.default.createSymbolicLink(atPath: dir.file("walout.db-wal"), withDestinationPath: outside.file("w"))
        _ = FileManager.default.createFile(atPath: outside.file("w"), contents: nil)
        try FileManager.default.createSymbolicLink(atPath: dir.file("self"), withDestinationPath: ".")
        let error = backingError { _ = try BackingStore.resolve(name: name, inDataDir: dir.path) }
        guard case .invalidPath? = error else { Issue.record("\(name.debugDescription): \(String(describing: error))"); return }
        #expect(error?.errnoName == "EINVAL")
    }

    @Test("a missing data dir is EINVAL")
    func missingDataDir() {
        #expect(
            backingError { _ = try BackingStore.resolve(name: "x.db", inDataDir: "/nonexistent-zramd") }?
                .errnoName == "EINVAL")
    }

    @Test("a symlink at the store path is refused by the store itself too")
    func storeRefusesSymlink() throws {
        let dir = TempDir()
        _ = FileManager.default.createFile(atPath: dir.file("real.db"), contents: nil)
        try FileManager.default.createSymbolicLink(atPath: dir.file("link.db"), withDestinationPath: dir.file("real.db"))
        #expect(backingError { _ = try BackingStore(path: dir.file("link.db"), pageSize: 4096) }?.errnoName == "EINVAL")
    }
}

@Suite("data directory opens follow no link")
struct DataDirectoryRaceTests {
    /// A thread swaps `sub` between a directory and a link to an outside directory while
    /// 10,000 creating opens of `sub/f` run: none may create anything outside.
    @Test func aParentSwappedForALinkNeverLeadsOutside() throws {
        let dir = TempDir()
        let outside = TempDir()
        let root = URL(fileURLWithPath: dir.path).resolvingSymlinksInPath().path
        DataDirectory.register(root)
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: false)
        let swapper = Swapper()
        let thread = swapper.start(root: root, outside: outside.path)
        var opened = 0
        for _ in 0..<10_000 {
            let fd = DataDirectory.open(root + "/sub/f", O_RDWR | O_CREAT, 0o600)
            if fd >= 0 {
                opened += 1
                close(fd)
            }
        }
        swapper.finish(thread)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "a file was created outside")
        #expect(opened > 0, "the swap never left the directory in place")
    }

    /// The same for SQLite's own files: stores opened under a swapping parent.
    @Test func sqliteFilesNeverLeadOutside() throws {
        let dir = TempDir()
        let outside = TempDir()
        let root = URL(fileURLWithPath: dir.path).resolvingSymlinksInPath().path
        DataDirectory.register(root)
        try FileManager.default.createDirectory(atPath: root + "/sub", withIntermediateDirectories: false)
        let swapper = Swapper()
        // Mostly short windows (races inside a store's dozen opens); every 20th time the
        // directory stays 50 ms, so that some stores open even on a loaded machine.
        let thread = swapper.start(root: root, outside: outside.path) { inPlace, swaps in
            inPlace && swaps % 20 == 0 ? 50_000 : UInt32.random(in: 0...2000)
        }
        var opened = 0
        var failures: [String: Int] = [:]
        var attempts = 0
        while attempts < 100 || swapper.swaps.load(ordering: .relaxed) < 300 {
            attempts += 1
            do throws(BackingError) {
                let store = try BackingStore(path: root + "/sub/bd.sqlite", pageSize: 4096, readers: 1)
                opened += 1
                store.close()
            } catch {
                failures[String(error.reason.suffix(70)), default: 0] += 1
            }
        }
        swapper.finish(thread)
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "a file was created outside")
        #expect(opened > 0, "\(failures)")
    }
}

/// Swaps `root/sub` between a directory and a link to an outside directory, on a thread of
/// its own, until `finish`.
final class Swapper: Sendable {
    private let stop = Atomic<Bool>(false)
    let swaps = Atomic<Int>(0)

    /// Starts swapping; after each swap it sleeps `pause(directoryInPlace, swaps)` µs.
    func start(root: String, outside: String, pause: @escaping @Sendable (Bool, Int) -> UInt32 = { _, _ in 0 }) -> pthread_t {
        PThread.spawn { [self] in
            var flip = false
            while !stop.load(ordering: .relaxed) {
                if flip {
                    unlink(root + "/sub")
                    rename(root + "/sub.away", root + "/sub")
                } else {
                    rename(root + "/sub", root + "/sub.away")
                    symlink(outside, root + "/sub")
                }
                flip.toggle()
                let pauseMicroseconds = pause(!flip, swaps.add(1, ordering: .relaxed).newValue)
                if pauseMicroseconds > 0 { usleep(pauseMicroseconds) }
            }
        }
    }

    /// Stops swapping and waits for the thread.
    func finish(_ thread: pthread_t) {
        stop.store(true, ordering: .relaxed)
        PThread.join(thread)
    }
}
