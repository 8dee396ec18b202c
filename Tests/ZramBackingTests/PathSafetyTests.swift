import Foundation
import Testing
import ZramBacking

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

    @Test("escapes and nonsense are EINVAL", arguments: [
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
        #expect(backingError { _ = try BackingStore.resolve(name: "x.db", inDataDir: "/nonexistent-zramd") }?
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
