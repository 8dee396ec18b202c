// swift-tools-version:6.0
import PackageDescription

/// A system library from Debian's packages: module map + pkg-config + apt provider.
func systemLibrary(_ name: String, pkgConfig: String, apt: String) -> Target {
    .systemLibrary(name: name, pkgConfig: pkgConfig, providers: [.apt([apt])])
}

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "zramd",
    products: [
        .executable(name: "zramd", targets: ["zramd"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.1.0"),
    ],
    targets: [
        systemLibrary("CZstd", pkgConfig: "libzstd", apt: "libzstd-dev"),
        systemLibrary("CLZ4", pkgConfig: "liblz4", apt: "liblz4-dev"),
        systemLibrary("CZlib", pkgConfig: "zlib", apt: "zlib1g-dev"),
        systemLibrary("CLZO", pkgConfig: "lzo2", apt: "liblzo2-dev"),
        systemLibrary("CSQLite", pkgConfig: "sqlite3", apt: "libsqlite3-dev"),
        // epoll, eventfd and sched_getcpu, which Glibc's module does not export.
        .systemLibrary(name: "CLinux"),

        // pthread locks every layer shares (ThreadSanitizer sees them; see docs/ARCHITECTURE.md).
        .target(name: "ZSync", dependencies: ["CLinux"], swiftSettings: strict),
        // Layer 1: codecs (zcomp).
        .target(name: "ZComp", dependencies: ["CZstd", "CLZ4", "CZlib", "CLZO", "ZSync"], swiftSettings: strict),
        // Layer 2: allocator (zsmalloc).
        .target(name: "ZSmalloc", dependencies: ["ZSync"], swiftSettings: strict),
        // Layer 4: backing store (SQLite).
        .target(name: "ZramBacking", dependencies: ["CSQLite", "CZlib", "ZSync"], swiftSettings: strict),

        // Layer 3: the zram device.
        .target(name: "ZramDevice", dependencies: ["ZComp", "ZSmalloc", "ZramBacking", "ZSync"], swiftSettings: strict),

        // Layer 5: the NBD front end (POSIX sockets; knows the device's public API, nothing of HTTP).
        .target(name: "ZramNBD", dependencies: ["ZramDevice", "ZSync"], swiftSettings: strict),

        // Layer 5: the HTTP engine (knows nothing of zram).
        .target(name: "MicroHTTP", dependencies: ["CLinux", "ZSync"], swiftSettings: strict),

        // Layer 5: zram over HTTP (routes, auth, errors, metrics).
        .target(
            name: "ZramHTTP",
            dependencies: ["MicroHTTP", "ZramDevice", "ZComp", "ZSync", .product(name: "Prometheus", package: "swift-prometheus")],
            swiftSettings: strict),

        // Layer 6: the executable.
        .executableTarget(
            name: "zramd",
            dependencies: [
                "ZramHTTP", "ZramDevice", "MicroHTTP", "ZramNBD",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "zbench", dependencies: ["ZComp", "ZSmalloc", "ZramDevice", "ZramBacking", "CSQLite"], path: "bench/Sources/zbench",
            swiftSettings: strict),
        .executableTarget(
            name: "httpbench", dependencies: ["MicroHTTP", "ZSync"], path: "bench/Sources/httpbench",
            swiftSettings: strict),

        // libFuzzer entry points for the attribute parsers and the router's parsing; built
        // with -sanitize=fuzzer,address -DFUZZING by `make fuzz`, as a replay driver otherwise.
        .target(name: "CLibFuzzer", path: "Fuzz/CLibFuzzer"),
        .executableTarget(
            name: "ZramFuzz", dependencies: ["CLibFuzzer", "ZramDevice", "ZramHTTP", "MicroHTTP"], path: "Fuzz/ZramFuzz",
            swiftSettings: strict),

        .target(name: "ZramTestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "ZSyncTests", dependencies: ["ZSync"], swiftSettings: strict),
        .testTarget(name: "ZCompTests", dependencies: ["ZComp", "ZramTestSupport"], swiftSettings: strict),
        .testTarget(name: "ZSmallocTests", dependencies: ["ZSmalloc", "ZramTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ZramDeviceTests", dependencies: ["ZramDevice", "ZSync", "ZramTestSupport"], swiftSettings: strict),
        .testTarget(name: "ZramBackingTests", dependencies: ["ZramBacking", "ZSync", "ZramTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "ZramNBDTests", dependencies: ["ZramNBD", "ZramDevice", "ZSync", "ZramTestSupport"], swiftSettings: strict),
        .testTarget(name: "ZramHTTPTests", dependencies: ["ZramHTTP", "MicroHTTP", "ZramDevice"], swiftSettings: strict),
        .testTarget(
            name: "MicroHTTPTests", dependencies: ["MicroHTTP", "ZSync", "ZramTestSupport"], swiftSettings: strict),
    ],
    swiftLanguageModes: [.v6]
)
