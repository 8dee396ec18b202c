import Testing
import ZComp

@Suite struct CodecParamsTests {
    /// The error `make` throws, or nil when it succeeds.
    func makeError(_ name: String, _ params: CodecParams = CodecParams(), pageSize: Int = 4096) -> CodecError? {
        do {
            _ = try Codecs.make(name, params: params, pageSize: pageSize)
            return nil
        } catch {
            return error
        }
    }

    @Test func namesInZramOrder() {
        #expect(Codecs.names == ["lzo", "lz4", "lz4hc", "zstd", "deflate"])
    }

    @Test("every backend is made with its defaults", arguments: Codecs.names)
    func defaults(_ name: String) throws {
        let codec = try Codecs.make(name)
        #expect(codec.name == name)
        #expect(codec.pageSize == 4096)
        _ = try codec.makeStream()
    }

    @Test func unknownAlgorithm() {
        #expect(makeError("lz5") == .unknownAlgorithm("lz5"))
        #expect(makeError("") == .unknownAlgorithm(""))
        #expect(makeError("LZ4") == .unknownAlgorithm("LZ4"))
    }

    @Test(
        "levels outside a backend's range",
        arguments: [
            ("lz4", 0), ("lz4", -1), ("lz4", 65538),
            ("lz4hc", 0), ("lz4hc", 13),
            ("zstd", 23), ("zstd", Int(Int32.min)), ("zstd", Int.max),
            ("deflate", -2), ("deflate", 10),
            ("lzo", 1),  // lzo has no level at all
        ])
    func badLevel(_ name: String, _ level: Int) {
        #expect(makeError(name, CodecParams(level: level))?.kind == "invalidParams")
    }

    @Test(
        "levels at the edges of a backend's range",
        arguments: [
            ("lz4", 1), ("lz4", 65537), ("lz4hc", 1), ("lz4hc", 12),
            ("zstd", 0), ("zstd", 1), ("zstd", 22), ("zstd", ZstdCodec.levels.lowerBound),
            ("deflate", -1), ("deflate", 0), ("deflate", 1), ("deflate", 9),
        ])
    func goodLevel(_ name: String, _ level: Int) throws {
        _ = try Codecs.make(name, params: CodecParams(level: level)).makeStream()
    }

    @Test func zstdLevelBelowMinimum() {
        #expect(makeError("zstd", CodecParams(level: ZstdCodec.levels.lowerBound - 1))?.kind == "invalidParams")
    }

    @Test func deflateWinbits() throws {
        for bad in [8, 16, 0, -8, -16] {
            #expect(makeError("deflate", CodecParams(deflateWinbits: bad))?.kind == "invalidParams")
        }
        for good in [9, 12, 15, -9, -11, -15] {
            _ = try Codecs.make("deflate", params: CodecParams(deflateWinbits: good)).makeStream()
        }
    }

    /// Issue 10 item 5: the kernel backend's defaults — a 2 KiB window (winbits 11), memory
    /// level 9, zlib's default level.
    @Test func deflateDefaultsAreTheKernels() throws {
        let codec = try DeflateCodec()
        #expect(codec.winbits == 11 && codec.level == -1)
        #expect(try DeflateCodec(params: CodecParams(deflateWinbits: -11)).winbits == 11, "negative is raw deflate, as the kernel reads it")
    }

    @Test("window bits on a backend other than deflate", arguments: ["lzo", "lz4", "lz4hc", "zstd"])
    func winbitsElsewhere(_ name: String) {
        #expect(makeError(name, CodecParams(deflateWinbits: 15))?.kind == "invalidParams")
    }

    @Test("a dictionary on a backend that takes none", arguments: ["lzo", "lz4", "lz4hc", "deflate"])
    func dictionaryElsewhere(_ name: String) {
        #expect(makeError(name, CodecParams(dictionary: [1, 2, 3, 4]))?.kind == "invalidParams")
    }

    @Test func zstdEmptyDictionary() {
        #expect(makeError("zstd", CodecParams(dictionary: []))?.kind == "invalidParams")
    }

    @Test func zstdMalformedFormattedDictionary() {
        // The zstd dictionary magic promises entropy tables that are not there.
        let dict: [UInt8] = [0x37, 0xA4, 0x30, 0xEC, 1, 0, 0, 0] + [UInt8](repeating: 0xFF, count: 200)
        #expect(makeError("zstd", CodecParams(dictionary: dict))?.kind == "invalidParams")
    }

    @Test("page sizes a backend cannot use", arguments: Codecs.names)
    func badPageSize(_ name: String) {
        for size in [0, -4096, 8, 1 << 21] {
            #expect(makeError(name, pageSize: size)?.kind == "invalidParams")
        }
    }

    @Test func messagesSayWhatIsWrong() {
        guard case .invalidParams(let message) = makeError("lz4hc", CodecParams(level: 13)) else {
            Issue.record("expected invalidParams")
            return
        }
        #expect(message.contains("lz4hc") && message.contains("13"))
    }
}
