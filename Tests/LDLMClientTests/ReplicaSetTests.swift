import Foundation
import LDLMClient
import LDLMTestSupport
import NIOPosix
import XCTest

/// The client against a real replica set: two `ldlm-server --ha_*` replicas
/// over one etcd member. Skipped without /usr/bin/etcd (Debian `etcd-server`).
final class ReplicaSetTests: XCTestCase {
    func testAFailoverKeepsAHoldAndTheElectionStepsDownThenLeadsAgain() async throws {
        let etcd = try EtcdTestCluster(size: 1)
        defer { etcd.stop() }
        try await etcd.waitUntilServing(group: MultiThreadedEventLoopGroup.singleton)
        let ports = try [freePort(), freePort()]
        func replica(_ port: Int) throws -> ServerProcess {
            try ServerProcess(port: port, arguments: [
                "--ha_etcd_endpoints", etcd.endpoints[0].description, "--ha_cluster", "client-\(ports[0])",
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
