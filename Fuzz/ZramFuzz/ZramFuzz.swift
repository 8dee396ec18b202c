#if FUZZING
    import CLibFuzzer
#endif
import Glibc
import MicroHTTP
import ZramDevice
import ZramHTTP

// Coverage-guided fuzzing of zramd's parsers (docs/RELIABILITY.md).
//
// Built with `-sanitize=fuzzer,address -DFUZZING`, `main` hands over to libFuzzer's driver,
// which calls `LLVMFuzzerTestOneInput` (the same function libFuzzer's own `main` would).
// Built normally, `FuzzDriver` below replays files and runs seeded random mutations through
// the same entry point (`make test` builds it, so it never rots).
//
// `ZRAMD_FUZZ_TARGET` picks what the input feeds:
//   attributes  byte 0 picks an attribute (every name, read-only ones too) and which of two
//               devices gets it, uninitialised or initialised (64 slots, lz4, zstd as
//               recompression algorithm, a SQLite backing store); the rest is the body of
//               `writeAttribute`. Afterwards the initialised device's pages must read back
//               exact and every readable attribute must still read.
//   router      the input is a request target `path?query`: the page-path fast parser is
//               checked against a reference parser, device names likewise, and query parsing
//               must be stable under re-encoding.

/// Runs one input; a broken invariant is a crash (`fatalError`) for the fuzzer to report.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    switch Harness.target {
    case .attributes: AttributeHarness.shared.run(bytes)
    case .router: RouterHarness.run(bytes)
    }
    return 0
}

enum FuzzTarget: String { case attributes, router }

enum Harness {
    static let target: FuzzTarget = {
        let name = getenv("ZRAMD_FUZZ_TARGET").map { String(cString: $0) } ?? "attributes"
        guard let target = FuzzTarget(rawValue: name) else { fatalError("ZRAMD_FUZZ_TARGET must be attributes or router, not \(name)") }
        return target
    }()
}

// MARK: attributes

final class AttributeHarness: @unchecked Sendable {
    static let shared = AttributeHarness()

    /// Every attribute name, sorted, so that byte 0 means the same attribute on every run.
    let names = ZramDevice.attributes.keys.sorted()
    let fresh: ZramDevice
    let live: ZramDevice
    let dataDir: String
    /// What slots 0..<pages.count of `live` hold, by the harness's own writes.
    let pages: [[UInt8]]
    /// Which of those slots hold their page (a write refused by mem_limit leaves a slot empty).
    var stored: [Bool]
    static let slots = 64

    init() {
        var template = Array("/tmp/zramd-fuzz-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { fatalError("mkdtemp") }
        dataDir = String(cString: made)
        // A dictionary and a directory for dict= and backing_dev= to find.
        let dict = (0..<2048).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 3) }
        Self.writeFile(dataDir + "/dict.bin", dict)
        mkdir(dataDir + "/sub", 0o700)
        var config = DeviceConfig(pageSize: 4096, primary: "lz4")
        config.streams = 1
        config.maxSlots = 1024  // disksize up to 4 MiB: the fuzzer must not spend its memory on slot tables
        fresh = ZramDevice(id: 0, dataDir: dataDir, config: config)
        config.secondary[1] = AlgorithmChoice(name: "zstd")
        config.backingDev = "wb.sqlite"
        live = ZramDevice(id: 1, dataDir: dataDir, config: config)
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            rng &+= 0x9E37_79B9_7F4A_7C15
            var z = rng
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let text = Array("zram keeps pages compressed in memory; ".utf8)
        pages = [
            (0..<4096).map { text[$0 % text.count] },  // compressible
            (0..<4096).map { _ in UInt8(truncatingIfNeeded: next()) },  // huge
            [UInt8](repeating: 0, count: 4096),  // same-filled
            (0..<4096).map { $0 % 3 == 0 ? UInt8(truncatingIfNeeded: next()) : 7 },  // in between
        ]
        stored = Array(repeating: false, count: pages.count)
        setUpLive()
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { fatalError("cannot create \(path)") }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// Initialises `live` if a reset left it uninitialised and writes the harness's pages again.
    func setUpLive() {
        if !live.isInitialised {
            do { try live.initialise(disksize: Self.slots * 4096) } catch { fatalError("cannot initialise: \(error)") }
            stored = Array(repeating: false, count: pages.count)
        }
        for (slot, page) in pages.enumerated() {
            do {
                try page.withUnsafeBytes { try live.write(slot, $0) }
                stored[slot] = true
            } catch let error as ZramError where error.errno == .ENOMEM {
                // mem_limit set by an input may refuse it: the slot keeps what it had.
            } catch {
                fatalError("write slot \(slot): \(error)")
            }
        }
    }

    func run(_ input: [UInt8]) {
        guard let first = input.first else { return }
        let name = names[Int(first) % names.count]
        let device = Int(first) / names.count % 2 == 0 ? fresh : live
        let body = String(validating: input.dropFirst(), as: UTF8.self) ?? String(decoding: input.dropFirst(), as: UTF8.self)
        do throws(ZramError) {
            try device.writeAttribute(name, body)
        } catch {
            let text = ErrorText.body(error)
            guard text.hasPrefix("zramd: \(error.errno.rawValue): "), text.last == "\n",
                !text.dropLast().contains(where: { $0.isNewline })
            else {
                fatalError("\(name) \(body.debugDescription): error body \(text.debugDescription) is not one line")
            }
        }
        // The uninitialised device starts every input afresh.
        fresh.reset()
        audit(after: name, body)
    }

    /// The initialised device's pages read back exact; every readable attribute reads.
    func audit(after name: String, _ body: String) {
        setUpLive()
        var page = [UInt8](repeating: 0, count: 4096)
        for (slot, expected) in pages.enumerated() {
            do {
                let found = try page.withUnsafeMutableBytes { try live.read(slot, into: $0) }
                if found != stored[slot] { fatalError("slot \(slot): found \(found), expected \(stored[slot]) after \(name) \(body.debugDescription)") }
                if found, page != expected { fatalError("slot \(slot) changed after \(name) \(body.debugDescription)") }
            } catch {
                fatalError("slot \(slot) unreadable after \(name) \(body.debugDescription): \(error)")
            }
        }
        for device in [fresh, live] {
            for (attr, access) in ZramDevice.attributes where access.contains(.read) {
                do { _ = try device.readAttribute(attr) } catch {
                    fatalError("\(device.name) \(attr) unreadable after \(name) \(body.debugDescription): \(error)")
                }
            }
        }
    }
}

// MARK: router

enum RouterHarness {
    static func run(_ input: [UInt8]) {
        let target = String(decoding: input, as: UTF8.self)
        let path: Substring, query: Substring
        if let mark = target.firstIndex(of: "?") {
            path = target[..<mark]
            query = target[target.index(after: mark)...]
        } else {
            path = target[...]
            query = ""
        }
        let fast = RouteParsing.pagePath(String(path))
        let reference = referencePagePath(Array(path.utf8))
        guard fast?.device == reference?.device, fast?.index == reference?.index else {
            fatalError("pagePath(\(path.debugDescription)) = \(String(describing: fast)), expected \(String(describing: reference))")
        }
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            let id = RouteParsing.deviceID(String(segment))
            let expected = segment.utf8.starts(with: "zram".utf8) ? canonical(Array(segment.utf8.dropFirst(4))) : nil
            guard id == expected else {
                fatalError("deviceID(\(segment.debugDescription)) = \(String(describing: id)), expected \(String(describing: expected))")
            }
        }
        let items = Request.queryItems(String(query))
        guard !query.isEmpty || items.isEmpty else { fatalError("an empty query has items \(items)") }
        // Decoded items, encoded again, decode to themselves.
        let again = Request.queryItems(items.map { encode($0.name) + "=" + encode($0.value) }.joined(separator: "&"))
        guard again.count == items.count, zip(again, items).allSatisfy({ $0.name == $1.name && $0.value == $1.value }) else {
            fatalError("query \(query.debugDescription): \(items) re-encoded parses as \(again)")
        }
    }

    /// `/dev/zram<N>/pages/<M>`, both canonical decimal within Int, read from the bytes.
    static func referencePagePath(_ bytes: [UInt8]) -> (device: Int, index: Int)? {
        let prefix = Array("/dev/zram".utf8), middle = Array("/pages/".utf8)
        guard bytes.starts(with: prefix) else { return nil }
        let rest = bytes.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return nil }
        guard let device = canonical(Array(rest[..<slash])) else { return nil }
        let tail = bytes[slash...]
        guard tail.starts(with: middle), let index = canonical(Array(tail.dropFirst(middle.count))) else { return nil }
        return (device, index)
    }

    /// A canonical non-negative decimal (no sign, no leading zero) that fits in Int.
    static func canonical(_ digits: [UInt8]) -> Int? {
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), digits.count == 1 || digits[0] != 0x30 else { return nil }
        return Int(String(decoding: digits, as: UTF8.self))
    }

    /// Percent-encodes every byte but unreserved ones.
    static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}

// MARK: main

#if FUZZING
    @main
    struct LibFuzzerMain {
        static func main() {
            var argc = CommandLine.argc
            var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzTestOneInput(data, size) })
        }
    }
#else
    /// `ZramFuzz [--runs N] [--seed S] [--max-len L] FILE|DIR...`: replays every file, then runs
    /// N random mutations of them (bit flips, byte changes, insertions, splices).
    @main
    struct FuzzDriver {
        static func main() {
            var args = Array(CommandLine.arguments.dropFirst())
            var runs = 0, seed: UInt64 = 1, maxLength = 256
            var inputs: [[UInt8]] = []
            while let arg = args.first {
                args.removeFirst()
                switch arg {
                case "--runs": runs = Int(args.removeFirst())!
                case "--seed": seed = UInt64(args.removeFirst())!
                case "--max-len": maxLength = Int(args.removeFirst())!
                default: inputs += readInputs(arg)
                }
            }
            for input in inputs { feed(input) }
            var state = seed
            func next() -> Int {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return Int(truncatingIfNeeded: (z ^ (z >> 31)) >> 1)
            }
            let dictionary = [
                "=", " ", "-", "\n", "/", "?", "&", "%", "0", "9", "K", "G", "T", "P", "9223372036854775807",
                "18446744073709551616", "algo=", "priority=", "type=", "page_indexes=", "level=", "dict=", "../",
                "/dev/zram", "/pages/", "zram", "\u{0}", "\u{FFFD}", "é",
            ].map { Array($0.utf8) }
            for _ in 0..<runs {
                var input = inputs.isEmpty ? [] : inputs[next() % inputs.count]
                for _ in 0..<(1 + next() % 4) {
                    let at = input.isEmpty ? 0 : next() % (input.count + 1)
                    switch next() % 6 {
                    case 0 where !input.isEmpty: input[min(at, input.count - 1)] ^= UInt8(1 << (next() % 8))
                    case 1 where !input.isEmpty: input[min(at, input.count - 1)] = UInt8(truncatingIfNeeded: next())
                    case 2 where !input.isEmpty: input.remove(at: min(at, input.count - 1))
                    case 3: input.insert(contentsOf: dictionary[next() % dictionary.count], at: at)
                    case 4 where !inputs.isEmpty:
                        let other = inputs[next() % inputs.count]
                        input = Array(input[..<at]) + other[(other.isEmpty ? 0 : next() % other.count)...]
                    default: input.insert(UInt8(truncatingIfNeeded: next()), at: at)
                    }
                }
                feed(Array(input.prefix(maxLength)))
            }
            print("ZramFuzz \(Harness.target.rawValue): \(inputs.count) corpus inputs replayed, \(runs) random inputs, no failure")
        }

        static func feed(_ input: [UInt8]) {
            input.withUnsafeBufferPointer { _ = fuzzTestOneInput($0.baseAddress, $0.count) }
        }

        static func readInputs(_ path: String) -> [[UInt8]] {
            var info = stat()
            guard stat(path, &info) == 0 else { fatalError("no such file: \(path)") }
            if info.st_mode & S_IFMT == S_IFDIR {
                guard let dir = opendir(path) else { return [] }
                defer { closedir(dir) }
                var names: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if !name.hasPrefix(".") { names.append(name) }
                }
                return names.sorted().flatMap { readInputs(path + "/" + $0) }
            }
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { return [] }
            defer { close(fd) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                bytes += chunk[..<n]
            }
            return [bytes]
        }
    }
#endif
