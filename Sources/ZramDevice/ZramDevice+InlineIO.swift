/// What a request served on a polling thread got: done, or "this would have to wait; hand
/// it to a worker", decided under the locks it would wait for.
public enum Inline<Value> {
    case done(Value)
    case wouldBlock
}

/// Page I/O for polling threads, which other connections wait on: nothing here sleeps. A busy
/// slot lock (recompression and writeback hold one for milliseconds), a busy compression or
/// decompression stream, a state lock held for writing, or a page in the backing store (SQLite
/// I/O) all answer `.wouldBlock` at once, as the kernel's discard path try-locks its slot.
extension ZramDevice {
    /// `write`, or `.wouldBlock` with the slot unchanged.
    /// A primary algorithm that is not fast (its codec says so) is slow work too.
    public func writeIfFree(_ index: Int, _ page: UnsafeRawBufferPointer) throws(ZramError) -> Inline<Void> {
        try withLiveIfFree("writing pages") { live throws(ZramError) in
            try checkIO(live, index: index, length: page.count)
            guard live.streams[0]!.codec.isFast else { return .wouldBlock }
            return try writePage(live, index, page, wait: false) ? .done(()) : .wouldBlock
        }
    }

    /// `read`, or `.wouldBlock` with nothing read and the slot unchanged.
    public func readIfFree(_ index: Int, into page: UnsafeMutableRawBufferPointer) throws(ZramError) -> Inline<Bool> {
        try withLiveIfFree("reading pages") { live throws(ZramError) in
            try checkIO(live, index: index, length: page.count)
            return try readPage(live, index, into: page, wait: false).map { .done($0) } ?? .wouldBlock
        }
    }

    /// `discard`, or `.wouldBlock` with the slot unchanged.
    public func discardIfFree(_ index: Int) throws(ZramError) -> Inline<Void> {
        try withLiveIfFree("discarding pages") { live throws(ZramError) in
            try discardSlot(live, index, wait: false) ? .done(()) : .wouldBlock
        }
    }

    /// `slotInfo`, or `.wouldBlock`.
    public func slotInfoIfFree(_ index: Int) throws(ZramError) -> Inline<SlotInfo?> {
        try withLiveIfFree("slot info") { live throws(ZramError) in
            try slotInfo(live, index, wait: false).map { .done($0) } ?? .wouldBlock
        }
    }

    /// Runs `body` with the live device if the state lock can be read-locked right now.
    private func withLiveIfFree<R>(_ what: String, _ body: (LiveDevice) throws(ZramError) -> Inline<R>) throws(ZramError) -> Inline<R> {
        try deviceState.readIfAvailable { (state) throws(ZramError) in try body(state.requireLive(name, what)) } ?? .wouldBlock
    }
}
