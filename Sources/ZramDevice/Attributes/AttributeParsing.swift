/// Parsers for what one would `echo` into a zram attribute.
enum AttributeParsing {
    /// The body without the newline `echo` adds (LF or CRLF) and surrounding blanks (`isspace`).
    ///
    /// Works on Unicode scalars: as `Character`s, `"\r\n"` is one grapheme that equals
    /// neither `"\r"` nor `"\n"`, so a CRLF body would keep its line end.
    static func trimmed(_ body: String) -> String {
        var text = Substring(body).unicodeScalars
        while let c = text.first, isBlank(c) { text = text.dropFirst() }
        while let c = text.last, isBlank(c) { text = text.dropLast() }
        return String(text)
    }

    /// C's `isspace` (space, tab, LF, VT, FF, CR): what separates tokens in an attribute body.
    @inline(__always) static func isBlank(_ c: Unicode.Scalar) -> Bool {
        c == " " || ("\t"..."\r").contains(c)
    }

    /// A non-negative integer; `what` names it in the error.
    static func unsigned(_ text: String, _ what: String) throws(ZramError) -> Int {
        try digits(trimmed(text), what)
    }

    /// An integer that may be negative (`-` then digits; never `+`, as for every other number).
    static func signed(_ text: String, _ what: String) throws(ZramError) -> Int {
        let value = trimmed(text)
        guard value.hasPrefix("-") else { return try digits(value, what) }
        let magnitude = String(value.dropFirst())
        guard !magnitude.isEmpty, magnitude.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ZramError(.EINVAL, "\(what) must be an integer, not \"\(value)\"")
        }
        guard let number = Int(value) else { throw ZramError(.ERANGE, "\(what) \(value) is out of range") }
        return number
    }

    /// Decimal digits only, nothing around them.
    private static func digits(_ value: String, _ what: String) throws(ZramError) -> Int {
        guard !value.isEmpty, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ZramError(.EINVAL, "\(what) must be a non-negative integer, not \"\(value)\"")
        }
        guard let number = Int(value) else { throw ZramError(.ERANGE, "\(what) \(value) is too large") }
        return number
    }

    /// Bytes with an optional K/M/G/T suffix (binary units, case-insensitive), as the kernel's memparse.
    static func size(_ text: String, _ what: String) throws(ZramError) -> Int {
        var value = trimmed(text)
        var shift = 0
        if let last = value.last, let s = ["k": 10, "m": 20, "g": 30, "t": 40, "p": 50][last.lowercased()] {
            shift = s
            value.removeLast()
        }
        let number = try digits(value, what)
        guard number <= Int.max >> shift else { throw ZramError(.ERANGE, "\(what) \(trimmed(text)) is too large") }
        return number << shift
    }

    /// `bytes` rounded up to whole pages, as a page count (zram keeps sizes in pages).
    /// - Throws: ERANGE when the rounded size in bytes does not fit in an `Int`.
    static func wholePages(_ bytes: Int, pageSize: Int, _ what: String) throws(ZramError) -> Int {
        let pages = bytes / pageSize + (bytes % pageSize == 0 ? 0 : 1)
        guard !pages.multipliedReportingOverflow(by: pageSize).overflow else {
            throw ZramError(.ERANGE, "\(what) \(bytes) is too large")
        }
        return pages
    }

    /// `0`/`1` and the kernel's other booleans (`y`, `n`, `yes`, `no`, `on`, `off`).
    static func boolean(_ text: String, _ what: String) throws(ZramError) -> Bool {
        switch trimmed(text).lowercased() {
        case "1", "y", "yes", "on", "true": return true
        case "0", "n", "no", "off", "false": return false
        default: throw ZramError(.EINVAL, "\(what) must be 0 or 1, not \"\(trimmed(text))\"")
        }
    }

    /// `key=value` tokens separated by blanks, in order. A token without `=`, an empty
    /// value or a key outside `allowed` is EINVAL (stricter than the kernel on purpose).
    /// Keys in `repeatable` may appear more than once; others at most once.
    static func pairs(_ text: String, allowed: Set<String>, repeatable: Set<String> = [], _ what: String)
        throws(ZramError) -> [(key: String, value: String)]
    {
        var out: [(key: String, value: String)] = []
        for scalars in trimmed(text).unicodeScalars.split(whereSeparator: isBlank) {
            let token = Substring(scalars)
            guard let eq = token.firstIndex(of: "=") else {
                throw ZramError(.EINVAL, "\(what): \"\(token)\" is not key=value")
            }
            let key = String(token[..<eq]), value = String(token[token.index(after: eq)...])
            guard allowed.contains(key) else {
                throw ZramError(.EINVAL, "\(what): unknown key \"\(key)\" (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            guard !value.isEmpty else { throw ZramError(.EINVAL, "\(what): \(key) has no value") }
            guard repeatable.contains(key) || !out.contains(where: { $0.key == key }) else {
                throw ZramError(.EINVAL, "\(what): \(key) given twice")
            }
            out.append((key, value))
        }
        return out
    }
}
