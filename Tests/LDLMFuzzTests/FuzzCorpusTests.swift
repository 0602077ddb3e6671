import Foundation
import LDLMFuzzTargets
import XCTest

/// The committed corpus (`fuzz/corpus`) and crash inputs (`fuzz/regressions`)
/// run through the same entries the fuzzers call.
final class FuzzCorpusTests: XCTestCase {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz")

    /// With `LDLM_WRITE_FUZZ_CORPUS=1`, writes the seeds instead of checking them.
    func testCommittedSeedsAreTheGeneratedOnes() throws {
        let write = ProcessInfo.processInfo.environment["LDLM_WRITE_FUZZ_CORPUS"] == "1"
        for (target, seeds) in SeedCorpus.targets {
            let directory = Self.fuzzDirectory.appendingPathComponent("corpus/\(target)")
            if write {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            }
            for (name, bytes) in seeds {
                let file = directory.appendingPathComponent(name)
                if write {
                    try Data(bytes).write(to: file)
                } else {
                    let committed = try? Data(contentsOf: file)
                    XCTAssertEqual(committed.map(Array.init), bytes, "fuzz/corpus/\(target)/\(name) is stale: run with LDLM_WRITE_FUZZ_CORPUS=1")
                }
            }
        }
    }

    func testServerSeedsReachTheLockCore() {
        let lock = SeedCorpus.targets["server-connection"]!["lock"]!
        let outcome = lock.withUnsafeBytes { ServerConnectionFuzzTarget.run($0) }
        XCTAssertEqual(outcome.locksHeld, 1, "the seed's Lock call was granted")

        let wait = SeedCorpus.targets["server-connection"]!["lock-twice-then-wait"]!
        XCTAssertEqual(wait.withUnsafeBytes { ServerConnectionFuzzTarget.run($0) }.locksHeld, 1)

        let released = SeedCorpus.targets["server-connection"]!["admin-calls"]!
        XCTAssertEqual(released.withUnsafeBytes { ServerConnectionFuzzTarget.run($0) }.locksHeld, 0, "ForceUnlock released it")
    }

    func testEveryCommittedInputRunsThroughItsTarget() throws {
        let targets: [String: (UnsafeRawBufferPointer) -> Void] = [
            "server-connection": { ServerConnectionFuzzTarget.run($0) },
            "message-decoding": { MessageDecodingFuzzTarget.run($0) },
        ]
        var replayed = 0
        for folder in ["corpus", "regressions"] {
            for (target, run) in targets {
                let directory = Self.fuzzDirectory.appendingPathComponent("\(folder)/\(target)")
                let files = (try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? []
                for file in files {
                    try Data(contentsOf: file).withUnsafeBytes { run($0) }
                    replayed += 1
                }
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, SeedCorpus.targets.values.map(\.count).reduce(0, +))
    }
}
