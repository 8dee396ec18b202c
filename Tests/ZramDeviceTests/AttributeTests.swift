import Testing
import ZramDevice
import ZramTestSupport

/// Each attribute's good and bad syntaxes, with the errno zram would give.
@Suite struct AttributeTests {
    func fresh() -> ZramDevice { ZramDevice(id: 0, dataDir: "/tmp") }

    @Test func disksizeParsesSuffixesAndIsBusyOnceSet() throws {
        let device = fresh()
        for bad in ["", "garbage", "-4096", "0", "12X", "99999999999999999999999", "1 G", "0x1000"] {
            expectErrno(bad == "99999999999999999999999" ? .ERANGE : .EINVAL) { try device.writeAttribute("disksize", bad) }
        }
        #expect(try device.readAttribute("initstate") == "0\n")
        try device.writeAttribute("disksize", "16M\n")
        #expect(try device.readAttribute("disksize") == "16777216\n")
        #expect(try device.readAttribute("initstate") == "1\n")
        expectErrno(.EBUSY) { try device.writeAttribute("disksize", "32M") }
        for bad in ["0", "", "x", "-1"] { expectErrno(.EINVAL) { try device.writeAttribute("reset", bad) } }
        try device.writeAttribute("reset", "1")
        #expect(try device.readAttribute("disksize") == "0\n")
        try device.writeAttribute("disksize", "5000")
        #expect(try device.readAttribute("disksize") == "8192\n", "rounded up to whole pages")
        for (text, bytes) in [("1k", 4096), ("5K", 8192), ("3m", 3 << 20), ("1G", 1 << 30), ("1T", 1 << 40)] {
            let d = fresh()
            try d.writeAttribute("mem_limit", text)
            #expect(try d.readAttribute("mem_limit") == "\(bytes)\n")
        }
    }

    /// Issue 10 item 6: a CRLF line end (Windows clients, many HTTP tools) was kept, so
    /// `all\r\n` was not `all`; and `level=+3` passed where every other number refuses `+`.
    @Test func crlfBodiesAndOneNumberGrammar() throws {
        let device = fresh()
        try device.writeAttribute("comp_algorithm", "zstd\r\n")
        try device.writeAttribute("algorithm_params", "algo=zstd level=-1\r\n")
        try device.writeAttribute("algorithm_params", "algo=zstd\r\nlevel=3\r\n")
        for bad in ["algo=zstd level=+3", "algo=zstd level=3x", "algo=zstd level=-", "algo=zstd level=--1", "algo=zstd level=٣"] {
            expectErrno(.EINVAL) { try device.writeAttribute("algorithm_params", bad) }
        }
        for bad in ["+16M", "+1"] { expectErrno(.EINVAL) { try device.writeAttribute("disksize", bad) } }
        try device.writeAttribute("mem_limit", "8M\r\n")
        try device.writeAttribute("disksize", "16M\r\n")
        #expect(try device.readAttribute("disksize") == "16777216\n")
        try device.writeAttribute("idle", "all\r\n")
        try device.writeAttribute("writeback_batch_size", "8\r\n")
        try device.writeAttribute("compact", "1\r\n")
        try device.writeAttribute("mem_used_max", "0\r\n")
        expectErrno(.EINVAL) { try device.writeAttribute("writeback_batch_size", "+8") }
        expectErrno(.EINVAL) { try device.writeAttribute("idle", "+10") }
        try device.writeAttribute("reset", "1\r\n")
        #expect(try device.readAttribute("initstate") == "0\n")
    }

    @Test func compAlgorithmListsAllAndRefusesUnknownLongAndLate() throws {
        let device = fresh()
        #expect(try device.readAttribute("comp_algorithm") == "lzo [lz4] lz4hc zstd deflate\n")
        try device.writeAttribute("comp_algorithm", "zstd\n")
        #expect(try device.readAttribute("comp_algorithm") == "lzo lz4 lz4hc [zstd] deflate\n")
        expectErrno(.EINVAL) { try device.writeAttribute("comp_algorithm", "brotli") }
        expectErrno(.EINVAL) { try device.writeAttribute("comp_algorithm", "") }
        expectErrno(.E2BIG) { try device.writeAttribute("comp_algorithm", String(repeating: "z", count: 200)) }
        try device.writeAttribute("disksize", "1M")
        expectErrno(.EBUSY) { try device.writeAttribute("comp_algorithm", "lz4") }
        expectErrno(.EBUSY) { try device.writeAttribute("algorithm_params", "level=3") }
        expectErrno(.EBUSY) { try device.writeAttribute("recomp_algorithm", "algo=zstd") }
        expectErrno(.EBUSY) { try device.writeAttribute("backing_dev", "wb.sqlite") }
        expectErrno(.EBUSY) { try device.writeAttribute("compressed_writeback", "1") }
    }

    @Test func recompAlgorithmTakesPriorities1To3() throws {
        let device = fresh()
        #expect(try device.readAttribute("recomp_algorithm") == "")
        try device.writeAttribute("recomp_algorithm", "algo=zstd")
        try device.writeAttribute("recomp_algorithm", "algo=deflate priority=3")
        #expect(
            try device.readAttribute("recomp_algorithm")
                == "#1: lzo lz4 lz4hc [zstd] deflate\n#3: lzo lz4 lz4hc zstd [deflate]\n")
        for bad in [
            "", "zstd", "algo=", "algo=zstd priority=0", "algo=zstd priority=4", "algo=zstd priority=-1",
            "algo=nope", "priority=1", "algo=zstd prio=1", "algo=zstd algo=lz4",
        ] {
            expectErrno(.EINVAL) { try device.writeAttribute("recomp_algorithm", bad) }
        }
    }

    @Test func algorithmParamsValidatesKeysAndValues() throws {
        let device = fresh()
        try device.writeAttribute("comp_algorithm", "zstd")
        try device.writeAttribute("algorithm_params", "algo=zstd level=7")
        try device.writeAttribute("algorithm_params", "level=5")
        try device.writeAttribute("recomp_algorithm", "algo=deflate priority=2")
        try device.writeAttribute("algorithm_params", "priority=2 level=9 deflate.winbits=12")
        for bad in [
            "level", "level=", "algo=zstd level=abc", "algo=zstd level=1000", "algo=nope level=1",
            "priority=3 level=1", "priority=9 level=1", "algo=zstd priority=0", "algo=zstd colour=blue",
            "algo=deflate deflate.winbits=30", "algo=lz4 dict=../etc/passwd", "algo=zstd dict=missing.dict",
        ] {
            expectErrno(.EINVAL) { try device.writeAttribute("algorithm_params", bad) }
        }
        try device.writeAttribute("disksize", "1M")
    }

    @Test func writebackSettings() throws {
        let device = fresh()
        #expect(try device.readAttribute("backing_dev") == "none\n")
        for bad in ["", "../escape.sqlite", "/etc/passwd", "a/../../b"] {
            expectErrno(.EINVAL) { try device.writeAttribute("backing_dev", bad) }
        }
        try device.writeAttribute("backing_dev", "zram0.sqlite\n")
        #expect(try device.readAttribute("backing_dev") == "zram0.sqlite\n")
        try device.writeAttribute("compressed_writeback", "yes")
        #expect(try device.readAttribute("compressed_writeback") == "1\n")
        expectErrno(.EINVAL) { try device.writeAttribute("compressed_writeback", "maybe") }
        #expect(try device.readAttribute("writeback_batch_size") == "32\n")
        for bad in ["0", "-1", "x", ""] { expectErrno(.EINVAL) { try device.writeAttribute("writeback_batch_size", bad) } }
        try device.writeAttribute("writeback_batch_size", "64")
        try device.writeAttribute("writeback_limit", "100")
        try device.writeAttribute("writeback_limit_enable", "1")
        #expect(try device.readAttribute("writeback_limit") == "100\n")
        #expect(try device.readAttribute("writeback_limit_enable") == "1\n")
        expectErrno(.EINVAL) { try device.writeAttribute("writeback_limit", "-5") }
        expectErrno(.EINVAL) { try device.writeAttribute("writeback_limit_enable", "2") }
    }

    @Test func triggersNeedAnInitialisedDeviceAndValidBodies() throws {
        let device = fresh()
        expectErrno(.EINVAL) { try device.writeAttribute("idle", "all") }
        expectErrno(.EINVAL) { try device.writeAttribute("compact", "1") }
        expectErrno(.EINVAL) { try device.writeAttribute("writeback", "idle") }
        try device.writeAttribute("recomp_algorithm", "algo=zstd")
        try device.writeAttribute("disksize", "1M")
        for bad in ["", "some", "-3", "1.5"] { expectErrno(.EINVAL) { try device.writeAttribute("idle", bad) } }
        try device.writeAttribute("idle", "all")
        try device.writeAttribute("idle", "60\n")
        for bad in [
            "type=cold", "type=idle threshold=x", "type=idle max_pages=-1", "type", "foo=bar",
            "algo=zstd priority=1", "priority=4", "algo=nope", "threshold=4096", "type=idle type=huge",
        ] {
            expectErrno(.EINVAL) { try device.writeAttribute("recompress", bad) }
        }
        try device.writeAttribute("recompress", "type=idle threshold=1000 max_pages=10 algo=zstd")
        expectErrno(.ENODEV) { try device.writeAttribute("writeback", "idle") }
        for bad in [
            "", "cold", "type=cold", "page_index=", "page_index=x", "page_indexes=5", "page_indexes=a-b",
            "page_index=1 color=red",
        ] {
            expectErrno(.EINVAL) { try device.writeAttribute("writeback", bad) }
        }
        expectErrno(.ERANGE) { try device.writeAttribute("writeback", "page_indexes=9-3") }
        for bad in ["1", "x", ""] { expectErrno(.EINVAL) { try device.writeAttribute("mem_used_max", bad) } }
        try device.writeAttribute("mem_used_max", "0")
        try device.writeAttribute("compact", "1")
    }

    @Test func unknownReadOnlyAndWriteOnlyAttributes() throws {
        let device = fresh()
        expectErrno(.ENOENT) { _ = try device.readAttribute("max_comp_streams") }
        expectErrno(.ENOENT) { try device.writeAttribute("nope", "1") }
        expectErrno(.EACCES) { _ = try device.readAttribute("reset") }
        expectErrno(.EACCES) { try device.writeAttribute("mm_stat", "1") }
        let names = Set(ZramDevice.attributes.keys)
        #expect(
            names.isSuperset(of: [
                "disksize", "initstate", "reset", "comp_algorithm", "algorithm_params", "recomp_algorithm", "recompress",
                "idle", "writeback", "writeback_limit", "writeback_limit_enable", "writeback_batch_size",
                "compressed_writeback", "backing_dev", "mem_limit", "mem_used_max", "compact", "mm_stat", "io_stat",
                "bd_stat", "debug_stat",
            ]))
        #expect(try device.readAttribute("debug_stat").hasPrefix("version: 1\n"))
    }
}
