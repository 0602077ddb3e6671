import Foundation
import LDLMClient
import NIOConcurrencyHelpers
import XCTest

/// `LeaderElection.observe(through:)`: who leads, from the admin service.
final class LeaderObservationTests: XCTestCase {
    /// Collects what an observation yields, and how it ended.
    private final class LeaderLog: Sendable {
        private let state = NIOLockedValueBox((leaders: [LeaderElection.Leader?](), failure: (any Error)?.none))
        private let task: Task<Void, Never>

        init(_ leaders: AsyncThrowingStream<LeaderElection.Leader?, Error>) {
            task = Task { [state] in
                do {
                    for try await leader in leaders { state.withLockedValue { $0.leaders.append(leader) } }
                } catch {
                    state.withLockedValue { $0.failure = error }
                }
            }
        }

        deinit { task.cancel() }

        var all: [LeaderElection.Leader?] { state.withLockedValue { $0.leaders } }
        var failure: (any Error)? { state.withLockedValue { $0.failure } }

        func wait(until done: @escaping @Sendable ([LeaderElection.Leader?]) -> Bool, within seconds: Double = 3) async throws {
            _ = try await poll(seconds) { done(all) ? true : nil }
        }
    }

    func testAnObserverSeesNobodyThenTheLeaderThenTheNextLeader() async throws {
        let path = "/tmp/ldlm-observe-\(UUID().uuidString.prefix(8)).sock"
        let server = try ServerProcess(arguments: ["--ipc_socket_file", path])
        defer { server.stop() }
        let admin = try LDLMAdmin(configuration: .init(endpoint: .unixSocket(path)))
        let name = uniqueName()
        let (first, second) = (try makeClient([server]), try makeClient([server]))
        let log = LeaderLog(LeaderElection(client: first, name: name).observe(through: admin, every: .milliseconds(50)))
        try await log.wait { $0.count == 1 }
        XCTAssertEqual(log.all, [nil], "nobody leads before a campaign")

        let firstTerm = Task { try await LeaderElection(client: first, name: name, lease: .seconds(5)).run() }
        try await log.wait { $0.last != nil && $0.last! != nil }
        let firstLeader = try XCTUnwrap(log.all.last ?? nil)
        XCTAssertTrue(firstLeader.remoteAddress.hasPrefix("127.0.0.1:"), firstLeader.remoteAddress)
        XCTAssertNotNil(firstLeader.sessionID)

        let secondTerm = Task { try await LeaderElection(client: second, name: name, lease: .seconds(5)).run() }
        try await Task.sleep(for: .milliseconds(200))
        firstTerm.cancel()
        _ = try? await firstTerm.value
        try await log.wait { ($0.last ?? nil).map { $0.remoteAddress != firstLeader.remoteAddress } ?? false }
        let secondLeader = try XCTUnwrap(log.all.last ?? nil)
        XCTAssertGreaterThan(try XCTUnwrap(secondLeader.fencingToken), try XCTUnwrap(firstLeader.fencingToken))
        XCTAssertEqual(Set(log.all.compactMap { $0?.remoteAddress }).count, 2, "only changes are reported: \(log.all)")

        secondTerm.cancel()
        _ = try? await secondTerm.value
        for client in [first, second] { await client.close() }
        await admin.close()
        try? FileManager.default.removeItem(atPath: path)
    }

    func testObservingWithoutAdminAccessEndsWithTheError() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let admin = try LDLMAdmin(configuration: .init(endpoint: .address(server.address)))
        let client = try makeClient([server])
        let log = LeaderLog(LeaderElection(client: client, name: uniqueName()).observe(through: admin))
        try await log.wait { _ in log.failure != nil }
        guard case LDLMClientError.permissionDenied = try XCTUnwrap(log.failure) else {
            return XCTFail("\(String(describing: log.failure))")
        }
        XCTAssertEqual(log.all, [])
        await client.close()
        await admin.close()
    }
}
