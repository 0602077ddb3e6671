import Foundation
import LDLMClient
import XCTest

/// The client against a real replica set: two `ldlm-server --ha_*` replicas
/// over one etcd member. Skipped without /usr/bin/etcd (Debian `etcd-server`).
final class ReplicaSetTests: XCTestCase {
    func testAFailoverKeepsAHoldAndTheElectionStepsDownThenLeadsAgain() async throws {
        let etcd = try EtcdMember()
        defer { etcd.stop() }
        let ports = try [freePort(), freePort()]
        func replica(_ port: Int) throws -> ServerProcess {
            try ServerProcess(port: port, arguments: [
                "--ha_etcd_endpoints", etcd.endpoint, "--ha_cluster", "client-\(ports[0])",
                "--ha_advertise_address", "127.0.0.1:\(port)", "--ha_lease", "2s", "--ha_reclaim_grace", "15s",
            ])
        }
        let first = try replica(ports[0])
        defer { first.stop() }
        // Listed first: the second replica, down at first and a standby later.
        let client = try makeClient(shards: [ports.reversed().map { "127.0.0.1:\($0)" }]) { $0.reclaimGrace = .seconds(20) }
        let name = uniqueName()
        // Once the first replica has won the election.
        let handle = try await withTimeout(20) {
            while true {
                if let handle = try? await client.tryLock(name, lease: .seconds(4)) { return handle }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let second = try replica(ports[1])
        defer { second.stop() }
        let election = LeaderElection(client: client, name: uniqueName(), lease: .seconds(5))
        let roles = RoleLog(election)
        let campaign = Task { try await election.run() }
        guard case .leader(let firstTerm) = try await roles.wait(count: 1, within: 10)[0] else { return XCTFail("roles: \(roles.all)") }

        first.stop()
        // Far sooner than the 20 s grace.
        let stepDown = try await roles.wait(count: 2, within: 3)[1]
        XCTAssertEqual(stepDown, .follower)
        guard case .leader(let secondTerm) = try await roles.wait(count: 3, within: 20)[2] else { return XCTFail("roles: \(roles.all)") }
        XCTAssertGreaterThan(secondTerm, firstTerm)

        // Past its 4 s lease: reclaimed on the new primary and renewed there.
        try await Task.sleep(for: .seconds(6))
        XCTAssertNil(handle.lostReason)
        let other = try makeClient([second])
        let excluded = try await other.tryLock(name)
        XCTAssertNil(excluded)
        try await client.unlock(handle)
        let taken = try await withTimeout(5) { try await other.lock(name) }
        XCTAssertGreaterThan(try XCTUnwrap(taken.fencingToken), try XCTUnwrap(handle.fencingToken))

        campaign.cancel()
        _ = await campaign.result
        for client in [client, other] { await client.close() }
    }
}

/// One etcd member on free local ports, with a data directory of its own.
private final class EtcdMember {
    static let binary = "/usr/bin/etcd"
    let endpoint: String
    private let process = Process()
    private let directory: URL

    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw XCTSkip("\(Self.binary) not found: apt-get install etcd-server")
        }
        directory = try temporaryDirectory()
        let (client, peer) = (try freePort(), try freePort())
        endpoint = "127.0.0.1:\(client)"
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = [
            "--data-dir", directory.appendingPathComponent("etcd").path,
            "--listen-client-urls", "http://\(endpoint)", "--advertise-client-urls", "http://\(endpoint)",
            "--listen-peer-urls", "http://127.0.0.1:\(peer)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(peer)",
            "--initial-cluster", "default=http://127.0.0.1:\(peer)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
    }

    func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }
}
