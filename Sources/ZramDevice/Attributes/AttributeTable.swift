/// How an attribute can be used.
public struct AttributeAccess: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    public static let read = AttributeAccess(rawValue: 1)
    public static let write = AttributeAccess(rawValue: 2)
    public static let readWrite: AttributeAccess = [.read, .write]
}

/// What writing an attribute costs, which decides where a server runs the write.
public enum AttributeCost: Sendable, Hashable {
    /// Settings and checks: a worker thread, like any attribute write.
    case setting
    /// Post-processing that walks every slot and may run for minutes (`recompress`,
    /// `writeback`, `compact`, `idle`): low-priority background workers, or a job.
    case maintenance
}

/// How the JSON view of a device parses an attribute's text.
public enum AttributeShape: Sendable, Hashable {
    /// One number (or the text itself when it is not one).
    case scalar
    /// Numbers named by `fields`, in order (`mm_stat`); `versioned` skips a leading `version: N`.
    case fields([String], versioned: Bool)
    /// `lzo [lz4] zstd`: the selected algorithm and the available ones.
    case selection
    /// `#1: lzo [zstd] …` a line per priority: the selected algorithm by priority.
    case perPriority
    /// A file name, or `none` (null).
    case nameOrNone
    /// `key=N key=N`: an object of numbers.
    case settings
}

/// One attribute as the table declares it: how it can be used, when, and what it costs.
public struct AttributeInfo: Sendable, Hashable {
    public let name: String
    public let access: AttributeAccess
    /// Writable only before `disksize` (zram's pre-init attributes).
    package let beforeInit: Bool
    public let cost: AttributeCost
    public let shape: AttributeShape
    /// A zramd extension, not a zram attribute.
    package let isExtension: Bool
}

/// One sysfs attribute: what `cat` shows and what `echo` does.
struct Attribute: Sendable {
    let name: String
    let show: (@Sendable (ZramDevice) throws(ZramError) -> String)?
    let store: (@Sendable (ZramDevice, String) throws(ZramError) -> Void)?
    let beforeInit: Bool
    let cost: AttributeCost
    let shape: AttributeShape
    let isExtension: Bool

    init(
        _ name: String, beforeInit: Bool = false, cost: AttributeCost = .setting, shape: AttributeShape = .scalar,
        isExtension: Bool = false,
        show: (@Sendable (ZramDevice) throws(ZramError) -> String)? = nil,
        store: (@Sendable (ZramDevice, String) throws(ZramError) -> Void)? = nil
    ) {
        self.name = name
        self.show = show
        self.store = store
        self.beforeInit = beforeInit
        self.cost = cost
        self.shape = shape
        self.isExtension = isExtension
    }

    var access: AttributeAccess {
        var access: AttributeAccess = []
        if show != nil { access.insert(.read) }
        if store != nil { access.insert(.write) }
        return access
    }

    var info: AttributeInfo {
        AttributeInfo(name: name, access: access, beforeInit: beforeInit, cost: cost, shape: shape, isExtension: isExtension)
    }
}

extension ZramDevice {
    /// Every attribute of `/sys/block/zram<id>/`, each group's entries in its own file.
    static let attributeTable: [String: Attribute] = {
        let all =
            sizeAttributes + algorithmAttributes + postProcessingAttributes
            + writebackSettingAttributes + memoryAttributes + statAttributes + tieringAttributes
        return Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    }()

    /// Attribute names and how each can be used.
    public static var attributes: [String: AttributeAccess] { attributeTable.mapValues(\.access) }

    /// Every attribute as declared: the one table that routing, scheduling, the JSON view,
    /// the documentation index and the contract test derive from (zram's `zram_disk_attrs[]`).
    public static let attributeInfo: [String: AttributeInfo] = attributeTable.mapValues(\.info)

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
        if deviceState.read({ $0.removed }) { throw ZramError.noDevice(name) }
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
