/// The registry of backends, what zram's `backends[]` table in `zcomp.c` is.
///
/// Adding a backend means one new file and one line in `backends`.
public enum Codecs {
    private typealias Factory = @Sendable (CodecParams, Int) throws(CodecError) -> any Codec

    /// Every backend, in the order `comp_algorithm` lists them.
    private static let backends: [(name: String, make: Factory)] = [
        ("lzo", { (p, s) throws(CodecError) in try LZOCodec(params: p, pageSize: s) }),
        ("lz4", { (p, s) throws(CodecError) in try LZ4Codec(params: p, pageSize: s) }),
        ("lz4hc", { (p, s) throws(CodecError) in try LZ4HCCodec(params: p, pageSize: s) }),
        ("zstd", { (p, s) throws(CodecError) in try ZstdCodec(params: p, pageSize: s) }),
        ("deflate", { (p, s) throws(CodecError) in try DeflateCodec(params: p, pageSize: s) }),
    ]

    /// The names of all backends: `["lzo", "lz4", "lz4hc", "zstd", "deflate"]`.
    public static let names: [String] = backends.map(\.name)

    /// Configures backend `name` with `params` for pages of `pageSize` bytes.
    /// - Throws: `.unknownAlgorithm` for a name not in `names`; `.invalidParams` for
    ///   parameters the backend rejects; `.failed` when a shared context cannot be made.
    public static func make(
        _ name: String, params: CodecParams = CodecParams(), pageSize: Int = 4096
    ) throws(CodecError) -> any Codec {
        guard let backend = backends.first(where: { $0.name == name }) else {
            throw .unknownAlgorithm(name)
        }
        return try backend.make(params, pageSize)
    }
}
