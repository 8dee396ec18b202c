/// glibc's `malloc_trim`, which the Glibc module does not import.
@_silgen_name("malloc_trim")
private func malloc_trim(_ pad: Int) -> Int32

/// The process heap.
package enum Heap {
    /// Gives the memory of freed heap blocks back to the system. malloc keeps what large
    /// requests freed (zramd raises its trim threshold so that batch buffers are reused), so a
    /// front end calls this when a client that sent large requests goes away.
    package static func trim() { _ = malloc_trim(0) }
}
