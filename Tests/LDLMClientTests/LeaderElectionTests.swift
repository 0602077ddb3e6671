import Foundation
import LDLMClient
import XCTest

/// `LeaderElection` against real servers: the role sequence over a loss,
/// resigning on cancellation, failover between two candidates.
final class LeaderElectionTests: XCTestCase {
    func testRolesGoLeaderThenFollowerOnLossThenLeaderAgainWithALargerToken() async throws {
        var server = try ServerProcess()
        let port = server.port
        let client = try makeClient([server])
        let election = LeaderElection(client: client, name: uniqueName(), lease: .seconds(2))
        let roles = RoleLog(election)
        let campaign = Task { try await election.run() }

        let first = try await roles.wait(count: 1)
        guard case .leader(let firstToken) = first[0] else { return XCTFail("roles: \(first)") }
        server.stop()
        let second = try await roles.wait(count: 2)
        XCTAssertEqual(second[1], .follower)

        // It campaigns on, through the failed connections, until the server is back.
        try await Task.sleep(for: .milliseconds(300))
        server = try ServerProcess(port: port)
        defer { server.stop() }
        let third = try await roles.wait(count: 3, within: 8)[2]
        guard case .leader(let secondToken) = third else { return XCTFail("roles: \(roles.all)") }
        XCTAssertGreaterThan(secondToken, firstToken)

        campaign.cancel()
        try await withTimeout(2) { try await campaign.value }
        await client.close()
    }

    func testCancellingResignsAtOnceAndReportsNothingMore() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server])
        let other = try makeClient([server])
        let name = uniqueName()
        let election = LeaderElection(client: client, name: name, lease: .seconds(30))
        let roles = RoleLog(election)
        let campaign = Task { try await election.run() }
        _ = try await roles.wait(count: 1)

        campaign.cancel()
        try await withTimeout(2) { try await campaign.value }
        // Free at once, not after the 30 s lease.
        let taken = try await other.tryLock(name)
        XCTAssertNotNil(taken, "the lock is still held after run() returned")
        try await withTimeout(1) { await roles.finished() }
        XCTAssertEqual(roles.all.count, 1, "\(roles.all)")
        for client in [client, other] { await client.close() }
    }

    func testTheOtherCandidateTakesOverWithALargerTokenAndTheOldBodyIsCancelled() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let name = uniqueName()
        let (first, second) = (try makeClient([server]), try makeClient([server]))
        let terms = TermLog()
        let firstCampaign = Task {
            try await LeaderElection(client: first, name: name, lease: .seconds(2)).withLeadership { try await terms.serve("first", $0) }
        }
        _ = try await terms.wait(count: 1)
        let secondCampaign = Task {
            try await LeaderElection(client: second, name: name, lease: .seconds(2)).withLeadership { try await terms.serve("second", $0) }
        }
        try await Task.sleep(for: .milliseconds(200))
        XCTAssertEqual(terms.started.map(\.who), ["first"], "two leaders at once")

        let start = ContinuousClock.now
        await first.close()
        let started = try await terms.wait(count: 2)
        XCTAssertLessThan(elapsed(since: start), 1)
        XCTAssertEqual(started[1].who, "second")
        XCTAssertGreaterThan(started[1].token, started[0].token)
        // The lost term's body is cancelled.
        _ = try await poll(1) { terms.cancelled == ["first"] ? true : nil }
        await assertThrows(try await firstCampaign.value) { $0 as? LDLMClientError == .clientClosed }

        secondCampaign.cancel()
        await assertThrows(try await secondCampaign.value) { $0 is CancellationError }
        await second.close()
    }

    func testWithLeadershipReturnsTheBodysResultAndReleasesTheLock() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server])
        let name = uniqueName()
        let token = try await LeaderElection(client: client, name: name).withLeadership { $0 }
        XCTAssertGreaterThan(token, 0)
        let again = try await client.tryLock(name)
        XCTAssertGreaterThan(try XCTUnwrap(again?.fencingToken), token)
        await client.close()
    }

    func testRunThrowsWhatCampaigningAgainCannotCure() async throws {
        let server = try ServerProcess(arguments: ["--password", "sesame"])
        defer { server.stop() }
        let client = try makeClient([server], password: "open")
        await assertThrows(try await withTimeout(5) { try await LeaderElection(client: client, name: uniqueName()).run() }) {
            if case LDLMClientError.unauthenticated = $0 { return true }
            return false
        }
        await client.close()
    }
}
