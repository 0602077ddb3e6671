import Foundation
import LDLMClient
import XCTest

/// Shards with several replicas: holds reclaimed after a drop, standbys'
/// hints followed. A server restarted from its `--state_file` keeps its
/// holds for their holders as a new primary does, so it stands in for one;
/// `FakeStandby` stands in for a standby.
final class ReplicaTests: XCTestCase {
    private func stateFileArguments(_ directory: URL) -> [String] {
        ["--state_file", directory.appendingPathComponent("state").path, "--ipc_socket_file", directory.appendingPathComponent("admin.sock").path]
    }

    func testAHoldIsReclaimedWithItsKeyAndTokenAfterTheServerComesBack() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = stateFileArguments(directory)
        var server = try ServerProcess(arguments: arguments)
        let port = server.port
        // The second replica is never up: the client alternates until the first is back.
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) { $0.reclaimGrace = .seconds(30) }
        let name = uniqueName()
        let handle = try await client.lock(name, lease: .seconds(3))
        let token = try XCTUnwrap(handle.fencingToken)

        server.stop()
        server = try ServerProcess(port: port, arguments: arguments)
        defer { server.stop() }
        let admin = try LDLMAdmin(configuration: .init(endpoint: .unixSocket(directory.appendingPathComponent("admin.sock").path)))
        // A restored hold belongs to no session until its key renews it.
        let holder = try await withTimeout(15) {
            try await awaitHolder(of: name, through: admin) { $0.sessionID != nil }
        }
        XCTAssertEqual(holder.fencingToken, token)
        XCTAssertTrue(handle.key.hasPrefix(holder.keyPrefix), "\(holder.keyPrefix) is not the start of \(handle.key)")
        XCTAssertNil(handle.lostReason)

        // Past the 3 s lease: only renewals on the new connection keep the hold.
        try await Task.sleep(for: .seconds(4))
        XCTAssertNil(handle.lostReason)
        let renewed = try await awaitHolder(of: name, through: admin) { _ in true }
        XCTAssertLessThanOrEqual(try XCTUnwrap(renewed.leaseRemaining), .seconds(3), "the restored lease was not replaced by ours")
        let other = try makeClient([server])
        let excluded = try await other.tryLock(name)
        XCTAssertNil(excluded)

        try await client.unlock(handle)
        let next = try await withTimeout(5) { try await other.lock(name) }
        XCTAssertGreaterThan(try XCTUnwrap(next.fencingToken), token)
        try await other.unlock(next)
        for client in [client, other] { await client.close() }
        await admin.close()
    }

    func testAHoldTheRestartedServerNoLongerHasIsLost() async throws {
        var server = try ServerProcess()
        let port = server.port
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) { $0.reclaimGrace = .seconds(30) }
        let handle = try await client.lock(uniqueName())

        server.stop()
        server = try ServerProcess(port: port)
        defer { server.stop() }
        let reason = try await withTimeout(15) { try await handle.waitUntilLost() }
        guard case .renewFailed(let error) = reason else { return XCTFail("lost reason: \(reason)") }
        switch error {
        case .lockDoesNotExist, .lockDoesNotExistOrInvalidKey: break
        default: XCTFail("renew failed with \(error)")
        }
        await client.close()
    }

    func testAHoldNotReclaimedWithinTheGraceIsLost() async throws {
        let server = try ServerProcess()
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) { $0.reclaimGrace = .seconds(2) }
        let handle = try await client.lock(uniqueName(), lease: .seconds(30))

        let start = ContinuousClock.now
        server.stop()
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertNil(handle.lostReason, "lost before the grace ended")
        let reason = try await withTimeout(10) { try await handle.waitUntilLost() }
        guard case .connectionLost(let why) = reason else { return XCTFail("lost reason: \(reason)") }
        XCTAssertTrue(why.contains("not reclaimed"), why)
        XCTAssertGreaterThanOrEqual(elapsed(since: start), 1.9)
        await client.close()
    }

    func testALeaseRunningOutBeforeTheGraceEndsLosesTheHold() async throws {
        let server = try ServerProcess()
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) { $0.reclaimGrace = .seconds(30) }
        let handle = try await client.lock(uniqueName(), lease: .seconds(2))

        server.stop()
        let reason = try await withTimeout(10) { try await handle.waitUntilLost() }
        XCTAssertEqual(reason, .leaseExpired)
        await client.close()
    }

    func testUnlockingAHoldBeingReclaimedReleasesItOnTheServerThatComesBack() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = stateFileArguments(directory)
        var server = try ServerProcess(arguments: arguments)
        let port = server.port
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) {
            $0.reclaimGrace = .seconds(30)
            // Enough connection attempts to outlast the restart.
            $0.reconnect = LDLMClient.Backoff(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200), attempts: 50)
        }
        let name = uniqueName()
        let handle = try await client.lock(name)

        server.stop()
        let unlocking = Task { try await client.unlock(handle) }
        try await Task.sleep(for: .milliseconds(300))
        server = try ServerProcess(port: port, arguments: arguments)
        defer { server.stop() }
        try await withTimeout(10) { try await unlocking.value }
        XCTAssertEqual(handle.lostReason, .released)
        // Restored from the state file, it would otherwise be held for ten minutes.
        let other = try makeClient([server])
        let taken = try await withTimeout(5) { try await other.lock(name) }
        try await other.unlock(taken)
        for client in [client, other] { await client.close() }
    }

    func testAStandbysHintLeadsToThePrimary() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let standby = try FakeStandby(primary: server.address)
        defer { standby.stop() }
        let client = try makeClient(shards: [[standby.address, server.address]])
        let other = try makeClient([server])
        let name = uniqueName()

        let handle = try await withTimeout(5) { try await client.lock(name) }
        XCTAssertEqual(standby.refusedCalls, 1)
        let excluded = try await other.tryLock(name)
        XCTAssertNil(excluded, "the lock was not taken on the primary")
        // Later calls go to the primary first.
        let second = try await client.tryLock(uniqueName())
        XCTAssertNotNil(second)
        try await client.unlock(handle)
        XCTAssertEqual(standby.refusedCalls, 1)
        for client in [client, other] { await client.close() }
    }

    func testAHintIsFollowedToAnAddressNotConfigured() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let standby = try FakeStandby(primary: server.address)
        defer { standby.stop() }
        let client = try makeClient(shards: [[standby.address, try closedAddress()]])

        let handle = try await withTimeout(5) { try await client.lock(uniqueName()) }
        XCTAssertNotNil(handle.fencingToken)
        XCTAssertEqual(standby.refusedCalls, 1)
        await client.close()
    }

    func testAStandbyThatKnowsNoPrimarySendsTheCallToTheNextReplica() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let standby = try FakeStandby(primary: nil)
        defer { standby.stop() }
        let client = try makeClient(shards: [[standby.address, server.address]])

        let handle = try await withTimeout(5) { try await client.tryLock(uniqueName()) }
        XCTAssertNotNil(handle)
        XCTAssertEqual(standby.refusedCalls, 1)
        await client.close()
    }

    func testABareUnavailableIsNoStandbysRefusal() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let replica = try FakeStandby(primary: server.address, sendsTrailer: false)
        defer { replica.stop() }
        let client = try makeClient(shards: [[replica.address, server.address]])

        await assertThrows(try await withTimeout(5) { try await client.tryLock(uniqueName()) }) {
            if case LDLMClientError.unavailable = $0 { return true }
            return false
        }
        XCTAssertEqual(replica.refusedCalls, 1, "the call was made again")
        await client.close()
    }

    func testACallNoReplicaTakesFailsUnavailable() async throws {
        let standbys = [try FakeStandby(primary: nil), try FakeStandby(primary: nil)]
        defer { standbys.forEach { $0.stop() } }
        let client = try makeClient(shards: [standbys.map(\.address)])

        await assertThrows(try await withTimeout(10) { try await client.tryLock(uniqueName()) }) {
            if case LDLMClientError.unavailable = $0 { return true }
            return false
        }
        XCTAssertGreaterThanOrEqual(standbys[0].refusedCalls + standbys[1].refusedCalls, 2)
        await client.close()
    }

    /// Cancelling resets the call's stream, which the connection reports as
    /// UNAVAILABLE. That is no standby's refusal: the connection to the
    /// primary, and every hold on it, stays.
    func testCancellingACallOnAShardWithReplicasKeepsTheConnectionAndItsHolds() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let standby = try FakeStandby(primary: server.address)
        defer { standby.stop() }
        for replicas in [[server.address, try closedAddress()], [standby.address, server.address]] {
            let client = try makeClient(shards: [replicas])
            let other = try makeClient([server])
            let kept = uniqueName() + "-kept"
            let queued = uniqueName() + "-queued"
            let handle = try await withTimeout(5) { try await client.lock(kept) }
            let blocker = try await other.lock(queued)
            let waiting = Task { try await client.lock(queued) }
            try await Task.sleep(for: .milliseconds(300))
            waiting.cancel()
            await assertThrows(try await waiting.value) { $0 is CancellationError }
            let refusals = standby.refusedCalls

            try await Task.sleep(for: .milliseconds(500))
            XCTAssertNil(handle.lostReason, "\(replicas): the cancel cost the other hold")
            let excluded = try await other.tryLock(kept)
            XCTAssertNil(excluded, "\(replicas): the server released the other hold")
            try await withTimeout(5) { try await client.renew(handle) }
            XCTAssertNil(handle.lostReason)
            // Still on the primary: nothing went back to the standby.
            XCTAssertEqual(standby.refusedCalls, refusals)
            try await client.unlock(handle)
            XCTAssertEqual(handle.lostReason, .released)
            try await other.unlock(blocker)
            for client in [client, other] { await client.close() }
        }
    }

    func testALeaderStepsDownOnADropDespiteReplicasAndLeadsAgain() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let arguments = stateFileArguments(directory)
        var server = try ServerProcess(arguments: arguments)
        let port = server.port
        let client = try makeClient(shards: [[server.address, try closedAddress()]]) { $0.reclaimGrace = .seconds(60) }
        let election = LeaderElection(client: client, name: uniqueName(), lease: .seconds(5))
        let roles = RoleLog(election)
        let campaign = Task { try await election.run() }

        let first = try await roles.wait(count: 1, within: 5)
        guard case .leader(let firstToken) = first[0] else { return XCTFail("roles: \(first)") }
        server.stop()
        // Long before the grace or the lease could end.
        let second = try await roles.wait(count: 2, within: 3)
        XCTAssertEqual(second[1], .follower)

        // The restarted server keeps the old term's hold for ten minutes
        // unless the campaign releases it by its key.
        server = try ServerProcess(port: port, arguments: arguments)
        defer { server.stop() }
        let third = try await roles.wait(count: 3, within: 15)[2]
        guard case .leader(let secondToken) = third else { return XCTFail("roles: \(roles.all)") }
        XCTAssertGreaterThan(secondToken, firstToken)

        campaign.cancel()
        _ = await campaign.result
        await client.close()
    }
}
