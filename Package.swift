// swift-tools-version: 6.2
import PackageDescription

// Every target of ours is built in Swift 6 language mode with warnings as errors.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .treatAllWarnings(as: .error),
]

// The service links with lld (shipped in the Swift toolchain) and packs its relative relocations
// (DT_RELR, glibc ≥ 2.36): the 110,000 RELA entries of a position-independent executable are
// 2.6 MB the loader reads at every start and keeps resident; packed they are 21 KB
// (docs/performance.md, "Resident memory").
//
// It also lays out the functions the service runs (startup and ingest, listed hottest first in
// link-order.txt by scripts/link-order.sh) side by side: scattered through 23 MB of text, the
// kernel's 64 KB fault-around made 16 MB of it resident for 1.7 MB of code run. A name the file
// lists that the build lacks is skipped; code it does not list follows, in the usual order.
let serviceLink: [LinkerSetting] = [
    .unsafeFlags([
        "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/morpheus-feedback/link-order.txt",
        "-Xlinker", "--no-warn-symbol-ordering",
    ], .when(platforms: [.linux])),
]

let package = Package(
    name: "morpheus-feedback",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "morpheus-feedback", targets: ["morpheus-feedback"]),
        .executable(name: "morpheus", targets: ["morpheus"]),
        .executable(name: "morpheus-bench", targets: ["morpheus-bench"]),
        .library(name: "MQTT", targets: ["MQTT"]),
        .library(name: "Postgres", targets: ["Postgres"]),
        // For the fuzz package in Tests/Fuzz.
        .library(name: "MorpheusCore", targets: ["MorpheusCore"]),
    ],
    // Exact versions: the container image and every machine build the same code (the versions
    // the project was last tested with); raise them deliberately, with a test run.
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration", exact: "1.4.0"),
        // NIOLockedValueBox: a pthread-based lock the thread sanitizer understands (Mutex's
        // futex on Linux is invisible to it, which buries real races under false reports).
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        // SHA-256 and HMAC: payload digests, keyed contributor pseudonyms, dataset checksums.
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        // Observability: metrics API, its Prometheus backend, and the HTTP server for /metrics and /health.
        .package(url: "https://github.com/apple/swift-metrics", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", exact: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
    ],
    targets: [
        // C layer: the two system libraries the user chose, found through pkg-config.
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // glibc's mallopt, for the service's memory bound.
        .systemLibrary(name: "CMalloc"),

        // Swift bindings: no domain knowledge.
        .target(name: "MQTT", dependencies: ["CMosquitto", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], swiftSettings: strict),
        .target(name: "Postgres", dependencies: ["CLibPQ", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], swiftSettings: strict),

        // Domain core: pure values and functions, no I/O.
        .target(name: "MorpheusCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // Adapters.
        .target(
            name: "MorpheusStorage",
            dependencies: ["Postgres", "MorpheusCore", .product(name: "Logging", package: "swift-log")],
            resources: [.copy("Migrations")],
            swiftSettings: strict
        ),

        // Assembly: configuration and the long-running services.
        .target(
            name: "MorpheusService",
            dependencies: [
                "MQTT", "Postgres", "MorpheusCore", "MorpheusStorage",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),

        // Executables only assemble.
        .executableTarget(
            name: "morpheus-feedback",
            dependencies: [
                "MorpheusService", "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["link-order.txt"],
            swiftSettings: strict,
            linkerSettings: serviceLink
        ),
        .executableTarget(
            name: "morpheus",
            dependencies: [
                "MQTT", "MorpheusCore", "MorpheusStorage", "MorpheusService", "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // A minimal MQTT subscriber the crash tests run as a separate process and SIGKILL.
        .executableTarget(
            name: "mqtt-probe",
            dependencies: ["MQTT"],
            swiftSettings: strict
        ),

        // The benchmark: the service against the broker's own round-trip ceiling (docs/performance.md).
        .executableTarget(
            name: "morpheus-bench",
            dependencies: [
                "MQTT", "Postgres", "MorpheusCore", "MorpheusStorage", "TestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // Shared by the integration tests and the benchmark: service locations, deadlines, child processes.
        .target(name: "TestSupport", dependencies: ["Postgres", "MorpheusCore", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")], swiftSettings: strict),

        .testTarget(name: "MQTTTests", dependencies: ["MQTT", "TestSupport", "mqtt-probe"], swiftSettings: strict),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "MorpheusCoreTests", dependencies: ["MorpheusCore", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "MorpheusStorageTests",
            dependencies: ["MorpheusStorage", "Postgres", "TestSupport"],
            swiftSettings: strict
        ),
        // The benchmark's pure parts (its attribution of latency): parsing and the stall rule.
        .testTarget(name: "BenchTests", dependencies: ["morpheus-bench"], swiftSettings: strict),
        .testTarget(
            name: "MorpheusServiceTests",
            dependencies: ["MorpheusService", "MorpheusCore", "MorpheusStorage", "MQTT", "Postgres", "TestSupport", "morpheus-feedback", "morpheus"],
            swiftSettings: strict
        ),
    ]
)
