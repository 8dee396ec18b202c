import Glibc
import ZComp
import ZramBacking
import ZramDevice

/// `zbench device`: the device layer against the storage core and against bare SQLite.
struct DeviceBench {
    let corpus: CorpusFile
    let rounds = 3
    let dataDir: String

    init(corpus: CorpusFile) {
        self.corpus = corpus
        var template = Array("/tmp/zbench-XXXXXX".utf8CString)
        dataDir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    /// A fresh, initialised device for `pages` slots.
    func device(pages: Int, secondary: String? = nil, backing: Bool = false) throws -> ZramDevice {
        let device = ZramDevice(id: 0, dataDir: dataDir)
        try device.writeAttribute("comp_algorithm", "lz4")
        if let secondary { try device.writeAttribute("recomp_algorithm", "algo=\(secondary)") }
        if backing { try device.writeAttribute("backing_dev", "bench.sqlite") }
        try device.writeAttribute("disksize", "\(pages * 4096)")
        return device
    }

    func fill(_ device: ZramDevice, pages: Int) throws {
        for i in 0..<pages { try device.write(i, corpus.page(i % corpus.pageCount)) }
    }

    /// Device write and read MB/s over every corpus page, one thread, against the store
    /// (codec + allocator, no slots) doing the same in the same run.
    func pageIO() throws -> [String: Double] {
        let pages = corpus.pageCount
        let bytes = Double(pages * 4096)
        let codec = try Codecs.make("lz4")
        var dw: [Double] = [], dr: [Double] = [], sw: [Double] = [], sr: [Double] = []
        let page = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
        defer { page.deallocate() }
        for _ in 0..<rounds {
            let store = try PageStore(codec: codec, streams: 2)
            sw.append(bytes / Measure.seconds { for i in 0..<pages { store.put(i, corpus.page(i)) } })
            sr.append(bytes / Measure.seconds { for i in 0..<pages { store.get(i, into: page) } })
            store.freeAll()
            let device = try device(pages: pages)
            dw.append(bytes / (try Measure.seconds { try fill(device, pages: pages) }))
            dr.append(bytes / (try Measure.seconds { for i in 0..<pages { _ = try device.read(i, into: page) } }))
            device.reset()
        }
        let (w, r, s, t) = (Measure.median(dw), Measure.median(dr), Measure.median(sw), Measure.median(sr))
        return [
            "device_write_mb_s": w / 1e6, "device_read_mb_s": r / 1e6, "store_write_mb_s": s / 1e6,
            "store_read_mb_s": t / 1e6, "device_write_vs_store": w / s, "device_read_vs_store": r / t,
        ]
    }

    /// Writeback pages/s (idle pages, batches of 32) against bare batched inserts of the same count.
    func writeback() throws -> [String: Double] {
        let pages = corpus.pageCount * 2
        var wb: [Double] = [], raw: [Double] = []
        for _ in 0..<rounds {
            let device = try device(pages: pages, backing: true)
            try fill(device, pages: pages)
            try device.writeAttribute("idle", "all")
            var written = 0
            let seconds = try Measure.seconds { written = try device.writeback(WritebackRequest(kind: .idle)) }
            wb.append(Double(written) / seconds)
            device.reset()
            raw.append(
                try RawSQLiteInserts.pagesPerSecond(
                    path: dataDir + "/raw.sqlite", source: UnsafeRawBufferPointer(corpus.bytes), pageSize: 4096,
                    count: written, batchSize: 32))
        }
        let (w, r) = (Measure.median(wb), Measure.median(raw))
        return ["writeback_pages_per_s": w, "raw_sqlite_inserts_per_s": r, "writeback_vs_raw_sqlite": w / r]
    }

    /// Pages/s of `recompress` with zstd over every lz4-compressed corpus page.
    func recompress() throws -> [String: Double] {
        let pages = corpus.pageCount
        var rates: [Double] = [], savings: [Double] = []
        for _ in 0..<rounds {
            let device = try device(pages: pages, secondary: "zstd")
            try fill(device, pages: pages)
            let before = device.mmStat.comprDataSize
            let seconds = try Measure.seconds { try device.writeAttribute("recompress", "") }
            rates.append(Double(device.debugStat.recompressAttempts) / seconds)
            savings.append(1 - Double(device.mmStat.comprDataSize) / Double(before))
            device.reset()
        }
        return ["recompress_pages_per_s": Measure.median(rates), "recompress_compr_data_size_saved": Measure.median(savings)]
    }
}
