import LDLMClient
import XCTest

final class LeaseAndShardingTests: XCTestCase {
    func testAutomaticRenewKeepsATwoSecondLeaseAliveForTenSeconds() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server])
        let other = try makeClient([server])
        let name = uniqueName()
        let handle = try await client.lock(name, lease: .seconds(2))
        try await Task.sleep(for: .seconds(10))
        XCTAssertNil(handle.lostReason)
        let refused = try await other.tryLock(name)
        XCTAssertNil(refused, "the lease ran out on the server")
        try await client.unlock(handle)
        for client in [client, other] { await client.close() }
    }

    /// CRC-32/IEEE of each name modulo 2, from Python's `zlib.crc32`.
    private static let expectedShards = ["alpha": 0, "bravo": 1, "charlie": 0, "delta": 1, "golf": 1, "ü-unicode": 0]

    func testEachNameGoesToItsCRC32Server() async throws {
        let servers = [try ServerProcess(), try ServerProcess()]
        defer { servers.forEach { $0.stop() } }
        let sharded = try makeClient(servers)
        let direct = try servers.map { try makeClient([$0]) }
        var handles: [LockHandle] = []
        for (name, shard) in Self.expectedShards {
            handles.append(try await sharded.lock(name))
            let onExpected = try await direct[shard].tryLock(name)
            XCTAssertNil(onExpected, "\(name) is not held on server \(shard)")
            let onOther = try await direct[1 - shard].tryLock(name)
            XCTAssertNotNil(onOther, "\(name) is held on server \(1 - shard)")
            try await direct[1 - shard].unlock(XCTUnwrap(onOther))
        }
        for handle in handles { try await sharded.unlock(handle) }
        for client in [sharded] + direct { await client.close() }
    }

    func testOnlyTheFirstReplicaOfAShardIsUsed() async throws {
        let server = try ServerProcess()
        defer { server.stop() }
        let client = try makeClient([server]) { $0.shards = [[server.address, "127.0.0.1:1"]] }
        let handle = try await client.lock(uniqueName())
        try await client.unlock(handle)
        await client.close()
    }

    func testConfigurationIsCheckedUpFront() {
        for shards in [[], [[]], [["localhost"]], [["localhost:0"]], [[":3144"]]] as [[[String]]] {
            XCTAssertThrowsError(try LDLMClient(configuration: .init(shards: shards)), "\(shards)") { error in
                guard case LDLMClientError.invalidConfiguration = error else { return XCTFail("\(error)") }
            }
        }
        var configuration = LDLMClient.Configuration(address: "[::1]:3144")
        XCTAssertNoThrow(try LDLMClient(configuration: configuration))
        configuration.lease = .milliseconds(10)
        XCTAssertNoThrow(try LDLMClient(configuration: configuration), "rounded up to 1 s")
        configuration.lease = .zero
        XCTAssertThrowsError(try LDLMClient(configuration: configuration)) { error in
            guard case LDLMClientError.invalidArgument("a lease must be at least 1 s") = error else { return XCTFail("\(error)") }
        }
        configuration.lease = .seconds(30)
        configuration.tls = LDLMClient.TLS(trust: .caFile("/nonexistent/ca.pem"))
        XCTAssertThrowsError(try LDLMClient(configuration: configuration)) { error in
            guard case LDLMClientError.invalidConfiguration(let message) = error, message.hasPrefix("TLS: ") else { return XCTFail("\(error)") }
        }
        configuration.tls = LDLMClient.TLS(certificateFile: "client.pem")
        XCTAssertThrowsError(try LDLMClient(configuration: configuration)) { error in
            XCTAssertEqual(error as? LDLMClientError, .invalidConfiguration("mTLS needs both a certificate file and a key file"))
        }
    }
}
