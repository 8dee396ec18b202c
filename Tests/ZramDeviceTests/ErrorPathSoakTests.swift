import Glibc
import Synchronization
import Testing
import ZComp
import ZramDevice
import ZramTestSupport

/// A codec whose streams fail now and then: `compress` throws every `compressEvery`-th call,
/// `decompress` every `decompressEvery`-th (0 = never).
final class FlakyCodec: Codec {
    let inner: any Codec
    let compressEvery: Int
    let decompressEvery: Int
    let calls = Atomic<Int>(0)
    var name: String { inner.name }
    var pageSize: Int { inner.pageSize }

    init(inner: any Codec, compressEvery: Int, decompressEvery: Int) {
        self.inner = inner
        self.compressEvery = compressEvery
        self.decompressEvery = decompressEvery
    }

    func makeStream() throws(CodecError) -> any CodecStream { Stream(codec: self, inner: try inner.makeStream()) }

    func fails(_ every: Int) -> Bool {
        every > 0 && calls.add(1, ordering: .relaxed).newValue % every == 0
    }

    final class Stream: CodecStream {
        let codec: FlakyCodec
        let inner: any CodecStream
        init(codec: FlakyCodec, inner: any CodecStream) {
            self.codec = codec
            self.inner = inner
        }

        func compress(_ page: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws(CodecError) -> Int? {
            if codec.fails(codec.compressEvery) { throw .failed("injected compression failure") }
            return try inner.compress(page, into: dst)
        }

        func decompress(_ src: UnsafeRawBufferPointer, into page: UnsafeMutableRawBufferPointer) throws(CodecError) {
            if codec.fails(codec.decompressEvery) { throw .corrupt("injected decompression failure") }
            try inner.decompress(src, into: page)
        }
    }
}

/// The error paths of recompression and writeback, round after round with failures injected:
/// codecs that fail, a backing file removed or made immutable mid-run, an exhausted
/// writeback_limit. Every page reads back exact or fails with EIO; nothing crashes. `make soak`
/// runs many rounds under AddressSanitizer, whose LeakSanitizer must report nothing.
/// ZRAMD_SOAK_ROUNDS sets the rounds (3 by default).
@Suite struct ErrorPathSoakTests {
    static let rounds = Int(getenv("ZRAMD_SOAK_ROUNDS").map { String(cString: $0) } ?? "") ?? 3

    @Test func recompressAndWritebackWithFailuresInjected() throws {
        var injected = 0, eio = 0, exact = 0
        for round in 0..<Self.rounds {
            let f = try DeviceFixture(
                disksize: "2M", secondary: ["zstd", "deflate"], backing: "soak.sqlite",
                makeCodec: { name, params, pageSize throws(CodecError) in
                    let real = try Codecs.make(name, params: params, pageSize: pageSize)
                    // The primary fails 1 compression in 37; the secondaries 1 in 5 and 1 decompression in 53.
                    return name == "lz4"
                        ? FlakyCodec(inner: real, compressEvery: 37, decompressEvery: 0)
                        : FlakyCodec(inner: real, compressEvery: 5, decompressEvery: 53)
                })
            defer { f.remove() }
            try f.device.writeAttribute("writeback_batch_size", String(1 + round % 16))
            var stored: [Int: Int] = [:]
            for slot in 0..<400 {
                let page = (round * 131 + slot * 7) % Corpus.shared.pageCount
                do {
                    try f.put(slot, corpusPage: page)
                    stored[slot] = page
                } catch let error as ZramError {
                    #expect(error.errno == .EIO, "\(error)")
                    injected += 1
                }
            }
            try f.device.writeAttribute("idle", "all")
            // Recompression through failing secondaries: failed attempts keep the old object.
            try f.device.writeAttribute("recompress", "type=idle")
            try f.device.writeAttribute("recompress", "type=huge priority=2")
            // Writeback whose store fails: removed file, or an immutable one, or no budget.
            let file = f.dataDir + "/soak.sqlite"
            switch round % 3 {
            case 0:
                unlink(file)
                expectErrno(.EIO) { try f.device.writeAttribute("writeback", "idle") }
                injected += 1
            case 1:
                #expect(system("chattr +i '\(file)' 2>/dev/null") == 0, "chattr +i (the soak runs as root)")
                expectErrno(.EIO) { try f.device.writeAttribute("writeback", "idle") }
                _ = system("chattr -i '\(file)'")
                try f.device.writeAttribute("writeback", "idle")
                injected += 1
            default:
                try f.device.writeAttribute("writeback_limit_enable", "1")
                try f.device.writeAttribute("writeback_limit", "0")
                expectErrno(.EIO) { try f.device.writeAttribute("writeback", "idle") }
                try f.device.writeAttribute("writeback_limit", "64")
                try f.device.writeAttribute("writeback", "idle")
                injected += 1
            }
            try f.device.writeAttribute("compact", "1")
            var roundEIO = 0
            for (slot, page) in stored {
                do {
                    if try f.get(slot) == Corpus.shared.page(page) { exact += 1 } else { Issue.record("slot \(slot): wrong bytes") }
                } catch let error as ZramError {
                    #expect(error.errno == .EIO, "\(error)")
                    roundEIO += 1
                }
            }
            #expect(f.device.ioStat.failedReads == roundEIO, "failed_reads counts every read that failed")
            eio += roundEIO
        }
        print("error-path soak: \(Self.rounds) rounds, \(injected) failures injected directly, \(exact) pages exact, \(eio) reads EIO")
        #expect(exact > 0)
    }
}
