/// What `disksize`, `reset`, `hot_remove` and the pre-init attributes change: reachable only
/// through the device's reader/writer lock (`ZramDevice.deviceState`).
struct DeviceState {
    var live: LiveDevice?
    var config: DeviceConfig
    /// The capacity in bytes, 0 until initialised.
    var disksize = 0
    /// Set by `hot_remove`: every later request fails with ENODEV, whoever routed it.
    var removed = false
    /// True while `disksize` builds the live device outside the lock.
    var initialising = false

    /// The live device.
    /// - Throws: ENODEV when removed, EINVAL when not initialised.
    @inline(__always)
    func requireLive(_ device: String, _ what: String) throws(ZramError) -> LiveDevice {
        guard let live else {
            if removed { throw ZramError.noDevice(device) }
            throw ZramError(.EINVAL, "\(device) is not initialised; write disksize before \(what)")
        }
        return live
    }

    /// ENODEV for a removed device, EBUSY once initialised (or being initialised).
    func requireUninitialised(_ device: String, _ what: String) throws(ZramError) {
        guard !removed else { throw ZramError.noDevice(device) }
        guard live == nil, !initialising else {
            throw ZramError(.EBUSY, "\(what) cannot change while \(device) is initialised; reset it first")
        }
    }
}
