import Glibc
import ZSync
import Synchronization
import ZComp
import ZSmalloc
import ZramBacking

/// What exists while a device is initialised: slots, allocator, streams, backing store.
/// Built by `disksize`, dropped by `reset`; its parts never change in between.
final class LiveDevice: Sendable {
    let pageSize: Int
    let slots: SlotTable
    let pool: ZsPool
    /// Stream pools by priority: 0 is the primary algorithm, 1...3 recompression.
    let streams: [StreamPool?]
    let backing: BackingStore?
    let compressedWriteback: Bool
    /// The primary algorithm the device was initialised with, and the secondary ones.
    let primary: AlgorithmChoice
    let secondary: [Int: AlgorithmChoice]
    /// What restoring a `--persist` image did, for the log; set before the device is published.
    nonisolated(unsafe) var restoreReport: String?
    let stats = DeviceStats()
    /// Compressed results longer than this are stored as whole pages (`huge`).
    let hugeThreshold: Int
    private let clockStart: Int

    init(
        slotCount: Int, config: DeviceConfig, backing: BackingStore?,
        makeCodec: CodecFactory
    ) throws(ZramError) {
        pageSize = config.pageSize
        slots = SlotTable(count: slotCount)
        pool =
            config.mapRegion.map { ZsPool(pageSize: config.pageSize, maxChain: config.maxChain, mapRegion: $0) }
            ?? ZsPool(pageSize: config.pageSize, maxChain: config.maxChain)
        hugeThreshold = pool.hugeClassSize
        var streams: [StreamPool?] = [nil, nil, nil, nil]
        do {
            let choices = [config.primary] + (1...3).map { config.secondary[$0] }
            for (priority, choice) in choices.enumerated() {
                guard let choice else { continue }
                let codec = try makeCodec(choice.name, choice.params, config.pageSize)
                streams[priority] = try StreamPool(codec: codec, count: config.streams, observer: config.codecObserver)
            }
        } catch {
            throw ZramError(.EINVAL, "cannot set up the compressors: \(error)")
        }
        self.streams = streams
        self.backing = backing
        compressedWriteback = config.compressedWriteback
        primary = config.primary
        secondary = config.secondary
        clockStart = MonotonicClock.seconds()
    }

    /// Seconds since the device was initialised (the slots' access-time clock).
    var now: UInt32 { UInt32(truncatingIfNeeded: MonotonicClock.seconds() - clockStart) }
}

/// Makes a codec by name; the default is `Codecs.make`, tests add slow ones.
public typealias CodecFactory = @Sendable (String, CodecParams, Int) throws(CodecError) -> any Codec
