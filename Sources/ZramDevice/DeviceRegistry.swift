import ZComp
import ZSync

/// The set of devices, as `/sys/class/zram-control`: `hot_add` and `hot_remove`.
public final class DeviceRegistry: Sendable {
    /// What a new device starts with (and returns to on `reset`).
    public let template: DeviceConfig
    public let dataDir: String
    private let makeCodec: CodecFactory
    private let devices = Locked<[Int: ZramDevice]>([:])

    public init(
        dataDir: String, template: DeviceConfig = DeviceConfig(),
        makeCodec: @escaping CodecFactory = { name, params, pageSize throws(CodecError) in
            try Codecs.make(name, params: params, pageSize: pageSize)
        }
    ) {
        self.dataDir = dataDir
        self.template = template
        self.makeCodec = makeCodec
    }

    /// Creates an uninitialised device with the lowest free id and returns it.
    @discardableResult
    public func hotAdd() -> ZramDevice {
        devices.withLock { devices in
            let id = (0...).first { devices[$0] == nil }!
            let device = ZramDevice(id: id, dataDir: dataDir, config: template, makeCodec: makeCodec)
            devices[id] = device
            return device
        }
    }

    /// Removes device `id` after freeing everything it holds. Requests that found the
    /// device before it went fail with ENODEV from then on, wherever they were routed.
    /// - Throws: ENODEV for an unknown id; EBUSY while it runs post-processing or I/O
    ///   keeps it busy (zram's hot_remove of a device in use), and then nothing changes.
    public func hotRemove(_ id: Int) throws(ZramError) {
        guard let device = devices.withLock({ $0[id] }) else { throw ZramError.noDevice("zram\(id)") }
        try device.remove()
        devices.withLock { if $0[id] === device { $0[id] = nil } }
    }

    /// `hot_remove` with the body one would `echo`: a device id.
    public func hotRemove(body: String) throws(ZramError) {
        let id: Int
        do { id = try AttributeParsing.unsigned(body, "device id") } catch {
            throw ZramError(error.errno, "hot_remove takes a device id, not \"\(AttributeParsing.trimmed(body))\"")
        }
        try hotRemove(id)
    }

    /// Device `id`, if it exists.
    public func device(_ id: Int) -> ZramDevice? {
        devices.withLock { $0[id] }
    }

    /// Every device, by id.
    public var all: [ZramDevice] {
        devices.withLock { $0.values.sorted { $0.id < $1.id } }
    }
}
