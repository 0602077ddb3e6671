// swift-tools-version:6.0
import PackageDescription

// The server module only: dynamic exclusivity checks cost about a tenth of its
// instructions per RPC, and everything in it runs confined to one event loop.
// Modules a client package may depend on (LDLMClient and the layers below it)
// must not use unsafe flags, or SwiftPM refuses them as a versioned
// dependency; their few hot class properties are `@exclusivity(unchecked)`.
let serverHotPathSettings: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "swift-ldlm",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ldlm-server", targets: ["ldlm-server"]),
        .executable(name: "ldlm-bench", targets: ["ldlm-bench"]),
        .executable(name: "ldlm-elect", targets: ["ldlm-elect"]),
        .executable(name: "ldlm-lock", targets: ["ldlm-lock"]),
        .library(name: "LDLMClient", targets: ["LDLMClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Layer 1: C libraries, the generated protobuf-c code and getrandom(2).
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        .target(name: "CLDLMProto", dependencies: ["CProtobufC"]),
        // etcd's v3 API (Protos/etcd), for the HA layer's etcd client.
        .target(name: "CEtcdProto", dependencies: ["CProtobufC"]),
        .systemLibrary(name: "CSysRandom"),
        // Go's duration syntax, shared by the server's flags and ldlm-lock's.
        .target(name: "GoDuration"),

        // Layer 2: one nghttp2 session, bytes in and bytes out, no sockets.
        .target(name: "LDLMHTTP2", dependencies: ["CNGHTTP2"]),

        // Layer 3: gRPC unary calls over HTTP/2 streams (and the NIO handler that drives
        // a client's), and the LDLM messages.
        .target(
            name: "LDLMGRPC",
            dependencies: [
                "LDLMHTTP2",
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
        .target(name: "LDLMProtocol", dependencies: ["CLDLMProto", "CProtobufC"]),

        // Layer 4: locks, waiters, sessions and leases; no I/O, injected clock.
        .target(name: "LDLMCore", dependencies: ["CSysRandom"]),
        // The state file's format, replay and durable appends; no event loop.
        .target(name: "LDLMStateLog", dependencies: ["LDLMCore"]),
        // A replica set's layout in etcd, its batched writes and lease timing; no event loop.
        .target(
            name: "LDLMReplication",
            dependencies: ["LDLMCore", "LDLMEtcd", .product(name: "DequeModule", package: "swift-collections")]
        ),

        // Layer 5: the connection pipeline, the services, the lock core's owner,
        // lifecycle and configuration.
        .target(
            name: "LDLMServer",
            dependencies: [
                "GoDuration", "LDLMCore", "LDLMGRPC", "LDLMHTTP2", "LDLMProtocol", "LDLMStateLog", "LDLMEtcd", "LDLMReplication",
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: serverHotPathSettings
        ),
        .executableTarget(name: "ldlm-server", dependencies: ["LDLMServer"]),

        // Clients: a Swift client on the same HTTP/2 and gRPC layers, the load generator and
        // the leader-election tool.
        .target(
            name: "LDLMClient",
            dependencies: [
                "LDLMGRPC", "LDLMHTTP2", "LDLMProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // etcd's KV, lease and auth calls for the HA layer (issue 12), on the same layers.
        .target(
            name: "LDLMEtcd",
            dependencies: [
                "CEtcdProto", "CProtobufC", "LDLMGRPC", "LDLMHTTP2", "LDLMProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        .executableTarget(
            name: "ldlm-elect",
            dependencies: [
                "LDLMClient", "GoDuration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ldlm-bench",
            dependencies: [
                "LDLMClient", "LDLMProtocol", "LDLMGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),

        // ldlm-lock: the commands live in LDLMLockTool, the executable only runs them.
        .target(
            name: "LDLMLockTool",
            dependencies: [
                "LDLMClient", "GoDuration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "ldlm-lock", dependencies: ["LDLMLockTool"]),

        // Fuzzing (scripts/fuzz.sh): libFuzzer targets on the same code the server runs.
        // Without -sanitize=fuzzer they only replay the input files they are given.
        .target(name: "CFuzzerDriver"),
        .target(
            name: "LDLMFuzzTargets",
            dependencies: [
                "CFuzzerDriver", "LDLMCore", "LDLMGRPC", "LDLMHTTP2", "LDLMProtocol", "LDLMServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "fuzz-server-connection", dependencies: ["LDLMFuzzTargets"]),
        .executableTarget(name: "fuzz-message-decoding", dependencies: ["LDLMFuzzTargets"]),

        .target(name: "LDLMTestSupport", dependencies: ["LDLMHTTP2"], path: "Tests/LDLMTestSupport"),
        .testTarget(name: "LDLMHTTP2Tests", dependencies: ["LDLMHTTP2", "LDLMTestSupport"]),
        .testTarget(name: "LDLMGRPCTests", dependencies: ["LDLMGRPC", "LDLMHTTP2", "LDLMTestSupport"]),
        .testTarget(name: "LDLMProtocolTests", dependencies: ["LDLMProtocol"]),
        .testTarget(name: "LDLMCoreTests", dependencies: ["LDLMCore"]),
        .testTarget(name: "LDLMStateLogTests", dependencies: ["LDLMStateLog", "LDLMCore"]),
        .testTarget(name: "LDLMReplicationTests", dependencies: ["LDLMReplication", "LDLMCore", "LDLMEtcd"]),
        // Drives the async client against the real `ldlm-server` binary.
        .testTarget(
            name: "LDLMClientTests",
            dependencies: [
                "LDLMClient", "LDLMGRPC", "LDLMProtocol",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "LDLMFuzzTests", dependencies: ["LDLMFuzzTargets"]),
        // Message round trips, and the client against a real etcd it starts (skipped without /usr/bin/etcd).
        .testTarget(
            name: "LDLMEtcdTests",
            dependencies: [
                "LDLMEtcd", "LDLMGRPC", "LDLMProtocol", "CEtcdProto", "CProtobufC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "LDLMServerTests",
            dependencies: [
                "LDLMServer", "GoDuration", "LDLMCore", "LDLMGRPC", "LDLMHTTP2", "LDLMProtocol", "LDLMStateLog", "LDLMTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ],
    // NIO channel handlers are confined to their event loop by design; the
    // Swift 6 checker cannot see that, so the package builds in Swift 5 mode.
    swiftLanguageModes: [.v5]
)
