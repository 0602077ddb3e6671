import LDLMEtcd
import LDLMTestSupport
import LDLMGRPC
import NIOCore
import NIOPosix
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The client against a real etcd (`/usr/bin/etcd`) that each test starts.
final class EtcdClientTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var cluster: EtcdTestCluster?
    private var clients: [EtcdClient] = []

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() async throws {
        for client in clients {
            await client.close()
        }
        if let cluster {
            // A paused member would not die of SIGKILL before it runs again.
            for index in cluster.members.indices { cluster.resume(index) }
            cluster.stop()
        }
        try await group.shutdownGracefully()
    }

    private func startCluster(size: Int = 1, tls: Bool = false) async throws -> EtcdTestCluster {
        let cluster = try EtcdTestCluster(size: size, tls: tls)
        self.cluster = cluster
        try await cluster.waitUntilServing(group: group)
        return cluster
    }

    private func makeClient(
        _ endpoints: [EtcdEndpoint],
        tls: EtcdTLSFiles? = nil,
        callTimeout: Duration = .seconds(5),
        keepalive: (interval: Duration, timeout: Duration)? = (interval: .seconds(5), timeout: .seconds(3))
    ) throws -> EtcdClient {
        let client = try EtcdClient(
            configuration: EtcdClientConfiguration(endpoints: endpoints, tls: tls, callTimeout: callTimeout, connectTimeout: .seconds(1), keepalive: keepalive),
            eventLoopGroup: group
        )
        clients.append(client)
        return client
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func assertEtcdError<T>(
        _ kind: EtcdError.Kind,
        _ body: () async throws -> T,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async -> EtcdError? {
        do {
            let result = try await body()
            XCTFail("expected \(kind), got \(result)", file: file, line: line)
        } catch let error as EtcdError {
            XCTAssertEqual(error.kind, kind, "\(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected EtcdError \(kind), got \(error)", file: file, line: line)
        }
        return nil
    }

    func testPutThenRangeReadsTheValueBack() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let put = try await client.put(EtcdPutRequest(key: bytes("a/1"), value: [0, 1, 0xff]))
        try await client.put(EtcdPutRequest(key: bytes("a/2"), value: bytes("two")))
        try await client.put(EtcdPutRequest(key: bytes("b"), value: bytes("other")))

        let one = try await client.range(EtcdRangeRequest(key: bytes("a/1")))
        XCTAssertEqual(one.kvs.map(\.value), [[0, 1, 0xff]])
        XCTAssertEqual(one.kvs.first?.createRevision, put.header.revision)
        let prefix = try await client.range(.prefix(bytes("a/")))
        XCTAssertEqual(prefix.kvs.map(\.key), [bytes("a/1"), bytes("a/2")])
        XCTAssertEqual(prefix.count, 2)

        let deleted = try await client.deleteRange(EtcdDeleteRangeRequest(key: bytes("a/"), rangeEnd: etcdPrefixEnd(bytes("a/")), prevKV: true))
        XCTAssertEqual(deleted.deleted, 2)
        XCTAssertEqual(deleted.prevKVs.map(\.value), [[0, 1, 0xff], bytes("two")])
        let after = try await client.range(.prefix(bytes("a/")))
        XCTAssertEqual(after.count, 0)
    }

    func testTxnTakesTheSuccessBranchOnlyWhileTheKeyIsAbsent() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let createIfAbsent = EtcdTxnRequest(
            compare: [EtcdCompare(key: bytes("leader"), .equal, .createRevision(0))],
            success: [.put(EtcdPutRequest(key: bytes("leader"), value: bytes("first")))],
            failure: [.range(EtcdRangeRequest(key: bytes("leader")))]
        )
        let first = try await client.txn(createIfAbsent)
        XCTAssertTrue(first.succeeded)
        guard case .put = first.responses.first else { return XCTFail("expected a put response, got \(first.responses)") }

        var second = createIfAbsent
        second.success = [.put(EtcdPutRequest(key: bytes("leader"), value: bytes("second")))]
        let answer = try await client.txn(second)
        XCTAssertFalse(answer.succeeded)
        guard case .range(let range) = answer.responses.first else { return XCTFail("expected a range response, got \(answer.responses)") }
        XCTAssertEqual(range.kvs.map(\.value), [bytes("first")])
        XCTAssertEqual(range.kvs.first?.createRevision, first.header.revision)
    }

    func testTxnTakes128OperationsAndRefuses129() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let puts = (0..<129).map { EtcdRequestOp.put(EtcdPutRequest(key: bytes("k\($0)"), value: [1])) }
        let accepted = try await client.txn(EtcdTxnRequest(success: Array(puts.prefix(128))))
        XCTAssertEqual(accepted.responses.count, 128)

        let error = await assertEtcdError(.tooManyOperations) { try await client.txn(EtcdTxnRequest(success: puts)) }
        XCTAssertEqual(error?.mayHaveBeenApplied, false)
        XCTAssertEqual(error?.status.message, "etcdserver: too many operations in txn request")
    }

    func testTxnRefusesAKeyWrittenTwice() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let twice = EtcdTxnRequest(success: [.put(EtcdPutRequest(key: bytes("k"), value: [1])), .put(EtcdPutRequest(key: bytes("k"), value: [2]))])
        _ = await assertEtcdError(.duplicateKey) { try await client.txn(twice) }
        let range = try await client.range(EtcdRangeRequest(key: bytes("k")))
        XCTAssertEqual(range.count, 0, "a refused transaction changes nothing")
    }

    func testKeepAliveOnceRefreshesTheLeaseTTL() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let lease = try await client.leaseGrant(EtcdLeaseGrantRequest(ttlSeconds: 5))
        XCTAssertEqual(lease.ttlSeconds, 5)
        try await Task.sleep(for: .milliseconds(2100))
        let aged = try await client.leaseTimeToLive(EtcdLeaseTimeToLiveRequest(id: lease.id))
        XCTAssertLessThanOrEqual(aged.ttlSeconds, 3)

        let renewed = try await client.leaseKeepAliveOnce(EtcdLeaseKeepAliveRequest(id: lease.id))
        XCTAssertEqual(renewed.id, lease.id)
        XCTAssertEqual(renewed.ttlSeconds, 5)
        let fresh = try await client.leaseTimeToLive(EtcdLeaseTimeToLiveRequest(id: lease.id))
        XCTAssertGreaterThanOrEqual(fresh.ttlSeconds, 4)
        XCTAssertEqual(fresh.grantedTTLSeconds, 5)
    }

    func testRevokeDeletesTheLeaseKeysAndAnUnknownLeaseIsTyped() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let lease = try await client.leaseGrant(EtcdLeaseGrantRequest(ttlSeconds: 30))
        try await client.put(EtcdPutRequest(key: bytes("held/1"), value: [1], lease: lease.id))
        try await client.put(EtcdPutRequest(key: bytes("held/2"), value: [2], lease: lease.id))
        try await client.put(EtcdPutRequest(key: bytes("kept"), value: [3]))
        let attached = try await client.leaseTimeToLive(EtcdLeaseTimeToLiveRequest(id: lease.id, keys: true))
        XCTAssertEqual(Set(attached.keys), [bytes("held/1"), bytes("held/2")])

        try await client.leaseRevoke(EtcdLeaseRevokeRequest(id: lease.id))
        let held = try await client.range(.prefix(bytes("held/")))
        XCTAssertEqual(held.count, 0)
        let kept = try await client.range(EtcdRangeRequest(key: bytes("kept")))
        XCTAssertEqual(kept.count, 1)

        _ = await assertEtcdError(.leaseNotFound) { try await client.leaseRevoke(EtcdLeaseRevokeRequest(id: lease.id)) }
        _ = await assertEtcdError(.leaseNotFound) { try await client.leaseKeepAliveOnce(EtcdLeaseKeepAliveRequest(id: lease.id)) }
        _ = await assertEtcdError(.leaseNotFound) { try await client.put(EtcdPutRequest(key: bytes("x"), value: [], lease: lease.id)) }
        let gone = try await client.leaseTimeToLive(EtcdLeaseTimeToLiveRequest(id: lease.id))
        XCTAssertEqual(gone.ttlSeconds, -1)
    }

    func testAnExpiredLeaseTakesItsKeyAway() async throws {
        let client = try makeClient(try await startCluster().endpoints)
        let lease = try await client.leaseGrant(EtcdLeaseGrantRequest(ttlSeconds: 1))
        try await client.put(EtcdPutRequest(key: bytes("ephemeral"), value: [1], lease: lease.id))
        let before = try await client.range(EtcdRangeRequest(key: bytes("ephemeral")))
        XCTAssertEqual(before.kvs.first?.lease, lease.id)

        let start = ContinuousClock.now
        while try await client.range(EtcdRangeRequest(key: bytes("ephemeral"))).count > 0 {
            guard ContinuousClock.now - start < .seconds(5) else { return XCTFail("the key outlived its 1 s lease by far") }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(500), "the key went before its lease ended")
    }

    func testADeadEndpointFirstInTheListIsSkipped() async throws {
        let cluster = try await startCluster()
        let deadEndpoint = EtcdEndpoint(host: "127.0.0.1", port: try EtcdTestCluster.freePort())
        let client = try makeClient([deadEndpoint] + cluster.endpoints)
        let put = try await client.put(EtcdPutRequest(key: bytes("k"), value: [1]))
        XCTAssertGreaterThan(put.header.revision, 0)
        let range = try await client.range(EtcdRangeRequest(key: bytes("k")))
        XCTAssertEqual(range.count, 1)
    }

    func testNoReachableEndpointIsUnavailableAndSurelyNotApplied() async throws {
        let client = try makeClient([EtcdEndpoint(host: "127.0.0.1", port: try EtcdTestCluster.freePort())])
        let error = await assertEtcdError(.unavailable) { try await client.put(EtcdPutRequest(key: bytes("k"), value: [1])) }
        XCTAssertEqual(error?.mayHaveBeenApplied, false)
    }

    func testACallToAFrozenMemberEndsIndeterminateAtItsDeadline() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster.endpoints)
        _ = try await client.range(EtcdRangeRequest(key: bytes("warm-up")))

        cluster.pause(0)
        let start = ContinuousClock.now
        let error = await assertEtcdError(.indeterminate) {
            try await client.put(EtcdPutRequest(key: bytes("k"), value: [1]), timeout: .milliseconds(500))
        }
        XCTAssertEqual(error?.status.code, .deadlineExceeded)
        XCTAssertEqual(error?.mayHaveBeenApplied, true)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        cluster.resume(0)

        // Whether etcd applies the put when it wakes depends on whether it
        // reads our RST_STREAM first: hence indeterminate. Calls go on working.
        _ = try await client.range(EtcdRangeRequest(key: bytes("k")))
    }

    func testKeepalivePingsNoticeAFrozenMemberBeforeTheDeadline() async throws {
        let cluster = try await startCluster()
        let client = try makeClient(cluster.endpoints, keepalive: (interval: .milliseconds(200), timeout: .milliseconds(300)))
        _ = try await client.range(EtcdRangeRequest(key: bytes("warm-up")))

        cluster.pause(0)
        let start = ContinuousClock.now
        let error = await assertEtcdError(.indeterminate) {
            try await client.put(EtcdPutRequest(key: bytes("k"), value: [1]), timeout: .seconds(20))
        }
        XCTAssertEqual(error?.status.code, .unavailable)
        XCTAssertTrue(error?.status.message.contains("keepalive PING not answered") == true, "\(String(describing: error))")
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        cluster.resume(0)
    }

    func testAThreeMemberClusterServesOnWhenOneMemberDies() async throws {
        let cluster = try await startCluster(size: 3)
        let client = try makeClient(cluster.endpoints, callTimeout: .seconds(3))
        try await client.put(EtcdPutRequest(key: bytes("before"), value: [1]))

        // The client is connected to the first endpoint: kill that member.
        cluster.kill(0)
        // A read goes on to the next member by itself. If the dead member
        // led, the others answer "no leader" until they elect one (about
        // the 500 ms election timeout), which the caller waits out.
        let start = ContinuousClock.now
        while true {
            do {
                let range = try await client.range(EtcdRangeRequest(key: bytes("before")))
                XCTAssertEqual(range.count, 1)
                break
            } catch let error as EtcdError where error.kind == .noLeader {
                guard ContinuousClock.now - start < .seconds(5) else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try await client.put(EtcdPutRequest(key: bytes("after"), value: [2]))
        let after = try await client.range(EtcdRangeRequest(key: bytes("after")))
        XCTAssertEqual(after.kvs.map(\.value), [[2]])
    }

    func testAFrozenMemberFirstInTheListFailsTheConnectNotTheWrite() async throws {
        let cluster = try await startCluster(size: 3)
        cluster.pause(0)
        // Its kernel still accepts TCP connections, but no HTTP/2 preface
        // comes: the connect times out, nothing was sent, and the write goes
        // to the next member.
        let client = try makeClient(cluster.endpoints, callTimeout: .seconds(4))
        let put = try await client.put(EtcdPutRequest(key: bytes("k"), value: [1]))
        XCTAssertNotEqual(put.header.memberID, 0)
        let range = try await client.range(EtcdRangeRequest(key: bytes("k")))
        XCTAssertEqual(range.kvs.first?.modRevision, put.header.revision)
    }

    func testTLSWithAClientCertificate() async throws {
        let cluster = try await startCluster(tls: true)
        let client = try makeClient(cluster.endpoints, tls: cluster.clientTLS)
        try await client.put(EtcdPutRequest(key: bytes("secure"), value: [1]))
        let range = try await client.range(EtcdRangeRequest(key: bytes("secure")))
        XCTAssertEqual(range.count, 1)

        // Without the client certificate etcd ends the handshake: nothing was sent.
        let anonymous = try makeClient(cluster.endpoints, tls: EtcdTLSFiles(caFile: cluster.clientTLS?.caFile))
        _ = await assertEtcdError(.unavailable) { try await anonymous.put(EtcdPutRequest(key: bytes("secure"), value: [2])) }
    }
}
