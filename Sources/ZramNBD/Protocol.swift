/// The numbers of the NBD protocol (NetworkBlockDevice/nbd, doc/proto.md) that zramd speaks:
/// the fixed newstyle handshake and the transmission phase with simple and structured replies.
enum NBD {
    // Handshake.
    static let nbdMagic: UInt64 = 0x4e42_444d_4147_4943  // "NBDMAGIC"
    static let optionMagic: UInt64 = 0x4948_4156_454f_5054  // "IHAVEOPT"
    static let optionReplyMagic: UInt64 = 0x0003_e889_0455_65a9
    static let flagFixedNewstyle: UInt16 = 1 << 0
    static let flagNoZeroes: UInt16 = 1 << 1
    static let clientFlagsKnown: UInt32 = 0b11

    // Transmission.
    static let requestMagic: UInt32 = 0x2560_9513
    static let simpleReplyMagic: UInt32 = 0x6744_6698
    static let structuredReplyMagic: UInt32 = 0x668e_33ef
    static let requestHeaderSize = 28
    static let simpleReplySize = 16
    static let structuredHeaderSize = 20
}

/// Handshake options the client may send.
enum NBDOption: UInt32 {
    case exportName = 1, abort = 2, list = 3, startTLS = 5, info = 6, go = 7, structuredReply = 8
    case listMetaContext = 9, setMetaContext = 10
}

/// Option reply types; the errors have bit 31 set.
enum NBDOptionReply: UInt32 {
    case ack = 1, server = 2, info = 3, metaContext = 4
    case errUnsupported = 0x8000_0001, errPolicy = 0x8000_0002, errInvalid = 0x8000_0003
    case errUnknown = 0x8000_0006, errShutdown = 0x8000_0007, errTooBig = 0x8000_0009
}

/// `NBD_INFO_*` items of an INFO or GO reply.
enum NBDInfo: UInt16 {
    case export = 0, name = 1, description = 2, blockSize = 3
}

/// Transmission flags advertised per export.
struct NBDTransmissionFlags: OptionSet {
    let rawValue: UInt16
    static let hasFlags = Self(rawValue: 1 << 0)
    static let readOnly = Self(rawValue: 1 << 1)
    static let sendFlush = Self(rawValue: 1 << 2)
    static let sendFUA = Self(rawValue: 1 << 3)
    static let sendTrim = Self(rawValue: 1 << 5)
    static let sendWriteZeroes = Self(rawValue: 1 << 6)
    static let canMultiConn = Self(rawValue: 1 << 8)
}

/// Request types.
enum NBDCommand: UInt16, CaseIterable, Sendable {
    case read = 0, write = 1, disconnect = 2, flush = 3, trim = 4, cache = 5, writeZeroes = 6, blockStatus = 7

    /// The label in `/metrics`.
    var label: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .disconnect: "disc"
        case .flush: "flush"
        case .trim: "trim"
        case .cache: "cache"
        case .writeZeroes: "write_zeroes"
        case .blockStatus: "block_status"
        }
    }
}

/// Request flags.
struct NBDCommandFlags: OptionSet {
    let rawValue: UInt16
    static let fua = Self(rawValue: 1 << 0)
    static let noHole = Self(rawValue: 1 << 1)
    static let dontFragment = Self(rawValue: 1 << 2)
    static let reqOne = Self(rawValue: 1 << 3)
    static let fastZero = Self(rawValue: 1 << 4)
}

/// Structured reply chunk types.
enum NBDChunk: UInt16 {
    case none = 0, offsetData = 1, offsetHole = 2, blockStatus = 5, error = 0x8001
    static let flagDone: UInt16 = 1 << 0
}

/// The errno values the protocol carries.
enum NBDError: UInt32 {
    case eperm = 1, eio = 5, enomem = 12, einval = 22, enospc = 28, eoverflow = 75, enotsup = 95, eshutdown = 108
}
