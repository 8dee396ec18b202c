/// printf-style helpers for sysfs text.
enum Format {
    /// `%<width>d`.
    static func rightAligned(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// Numbers as zram prints its stat files: each `%8llu`, space-separated, newline-terminated.
    static func statLine(_ values: [Int]) -> String {
        values.map { rightAligned($0, 8) }.joined(separator: " ") + "\n"
    }
}
