/// How an attribute can be used.
public struct AttributeAccess: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let read = AttributeAccess(rawValue: 1)
    public static let write = AttributeAccess(rawValue: 2)
    public static let readWrite: AttributeAccess = [.read, .write]
}

/// One sysfs attribute: what `cat` shows and what `echo` does.
struct Attribute: Sendable {
    let name: String
    let show: (@Sendable (ZramDevice) throws(ZramError) -> String)?
    let store: (@Sendable (ZramDevice, String) throws(ZramError) -> Void)?

    init(_ name: String,
         show: (@Sendable (ZramDevice) throws(ZramError) -> String)? = nil,
         store: (@Sendable (ZramDevice, String) throws(ZramError) -> Void)? = nil) {
        self.name = name
        self.show = show
        self.store = store
    }

    var access: AttributeAccess {
        var access: AttributeAccess = []
        if show != nil { access.insert(.read) }
        if store != nil { access.insert(.write) }
        return access
    }
}

extension ZramDevice {
    /// Every attribute of `/sys/block/zram<id>/`, each group's entries in its own file.
    static let attributeTable: [String: Attribute] = {
        let all = sizeAttributes + algorithmAttributes + postProcessingAttributes
            + writebackSettingAttributes + memoryAttributes + statAttributes + tieringAttributes
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()

    /// Attribute names and how each can be used.
    public static var attributes: [String: AttributeAccess] { attributeTable.mapValues(\.access) }

    /// What `cat /sys/block/zram<id>/<name>` shows.
    /// - Throws: ENOENT for an unknown attribute, EACCES for a write-only one, or the attribute's own error.
    public func readAttribute(_ name: String) throws(ZramError) -> String {
        guard let attribute = Self.attributeTable[name] else { throw ZramError(.ENOENT, "\(self.name) has no attribute \(name)") }
        guard let show = attribute.show else { throw ZramError(.EACCES, "\(name) is write-only") }
        try checkNotRemoved()
        return try show(self)
    }

    /// ENODEV once `hot_remove` took the device away (a request may still hold it).
    func checkNotRemoved() throws(ZramError) {
        stateLock.readLock()
        defer { stateLock.unlock() }
        if removed { throw ZramError.noDevice(name) }
    }

    /// What `echo <body> > /sys/block/zram<id>/<name>` does.
    /// - Throws: ENOENT for an unknown attribute, EACCES for a read-only one, or the attribute's own error.
    public func writeAttribute(_ name: String, _ body: String) throws(ZramError) {
        guard let attribute = Self.attributeTable[name] else { throw ZramError(.ENOENT, "\(self.name) has no attribute \(name)") }
        guard let store = attribute.store else { throw ZramError(.EACCES, "\(name) is read-only") }
        try checkNotRemoved()
        try store(self, body)
    }
}
