#!/usr/bin/env bash
# Proves that another package can depend on the LDLMClient library through a
# version tag: SwiftPM refuses a versioned dependency whose targets use unsafe
# flags. Builds a throwaway package against a tagged clone of this repository
# (committed state only) and runs it. Leaves nothing behind.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

git clone -q "file://$repo" "$work/swift-ldlm"
git -C "$work/swift-ldlm" -c user.name=check -c user.email=check@localhost tag -a 99.0.0 -m "dependency check"

mkdir -p "$work/consumer/Sources/consumer"
cat > "$work/consumer/Package.swift" <<MANIFEST
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "consumer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "file://$work/swift-ldlm", from: "99.0.0"),
    ],
    targets: [
        .executableTarget(name: "consumer", dependencies: [.product(name: "LDLMClient", package: "swift-ldlm")]),
    ]
)
MANIFEST
cat > "$work/consumer/Sources/consumer/main.swift" <<'SOURCE'
import LDLMClient

let client = try LDLMClient(configuration: .init(address: "127.0.0.1:1"))
await client.close()
print("LDLMClient builds and runs as a versioned dependency")
SOURCE
cd "$work/consumer"
swift build 2>&1 | tail -3
swift run --skip-build consumer
