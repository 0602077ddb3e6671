import LDLMCore
import LDLMEtcd
import LDLMReplication
import LDLMTestSupport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import LDLMServer

/// The primary's journal against a real etcd: what it writes, when answers
/// go out, and what it does when the primary key is no longer its own.
final class EtcdJournalTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var cluster: EtcdTestCluster?
    private var client: EtcdClient!
    private let keys = ReplicaKeys(cluster: "journal-test")

    /// The table and journal live on the loop; tests reach them through `onLoop`.
    private final class Primary: @unchecked Sendable {
        let table = LockTable(clock: EventLoopClock(), fencingTokens: FencingTokenSource(startingAbove: 5_000))
        let journal: EtcdJournal
        let session: SessionID
        let failures = NIOLockedValueBox<[String]>([])

        init(client: EtcdClient, keys: ReplicaKeys, claim: (term: Int64, lease: Int64), eventLoop: EventLoop) {
            let failures = self.failures
            journal = EtcdJournal(
                client: client, keys: keys, term: claim.term, sequence: claim.term, advertiseAddress: EtcdJournalTests.address,
                lease: claim.lease, retryLimit: .seconds(10), fencingTokenFloor: 0, eventLoop: eventLoop, commitTimeout: .seconds(2)
            ) { reason in failures.withLockedValue { $0.append(reason) } }
            table.journal = journal
            journal.attached(to: table)
            session = table.openSession()
        }
    }

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() async throws {
        await client?.close()
        cluster?.stop()
        try await group.shutdownGracefully()
    }

    private func startCluster(size: Int) async throws {
        let cluster = try EtcdTestCluster(size: size, arguments: ["--heartbeat-interval", "100", "--election-timeout", "1000"])
        self.cluster = cluster
        try await cluster.waitUntilServing(group: group)
        client = try EtcdClient(configuration: EtcdClientConfiguration(endpoints: cluster.endpoints, callTimeout: .seconds(3)), eventLoopGroup: group)
    }

    static let address = "127.0.0.1:1"

    /// Creates the primary key; its create revision is the term.
    private func claimPrimaryKey() async throws -> (term: Int64, lease: Int64) {
        let lease = try await client.leaseGrant(EtcdLeaseGrantRequest(ttlSeconds: 30))
        let response = try await client.txn(EtcdTxnRequest(
            compare: [EtcdCompare(key: keys.primary, .equal, .createRevision(0))],
            success: [.put(EtcdPutRequest(key: keys.primary, value: Array(Self.address.utf8), lease: lease.id))]
        ))
        XCTAssertTrue(response.succeeded)
        return (response.header.revision, lease.id)
    }

    private var loop: EventLoop { group.next() }

    private struct JournalFailed: Error {
        let reasons: [String]
    }

    /// Runs `body` on the loop and waits until the journal has committed
    /// what it did; throws if the journal fails instead.
    private func afterCommit<T: Sendable>(_ primary: Primary, _ body: @escaping @Sendable () throws -> T) async throws -> T {
        let answer = NIOLockedValueBox<Result<T, Error>?>(nil)
        loop.execute {
            do {
                let value = try body()
                primary.journal.afterSync { answer.withLockedValue { $0 = .success(value) } }
            } catch {
                answer.withLockedValue { $0 = .failure(error) }
            }
        }
        try await waitUntil { answer.withLockedValue { $0 != nil } || primary.failures.withLockedValue { !$0.isEmpty } }
        if let result = answer.withLockedValue({ $0 }) {
            return try result.get()
        }
        throw JournalFailed(reasons: primary.failures.withLockedValue { $0 })
    }

    private func hold(_ name: String, _ key: LockKey) async throws -> HoldValue? {
        let kv = try await client.range(EtcdRangeRequest(key: keys.hold(name: name, key: key))).kvs.first
        return kv.flatMap { HoldValue(decoding: $0.value) }
    }

    private func fencingHighWater() async throws -> UInt64? {
        let kv = try await client.range(EtcdRangeRequest(key: keys.fencing)).kvs.first
        return kv.flatMap { UInt64(String(decoding: $0.value, as: UTF8.self)) }
    }

    func testAGrantIsInEtcdWithItsTokenBeforeItIsAnsweredAndAReleaseRemovesIt() async throws {
        try await startCluster(size: 1)
        let primary = Primary(client: client, keys: keys, claim: try await claimPrimaryKey(), eventLoop: loop)
        let grant = try await afterCommit(primary) {
            try XCTUnwrap(primary.table.tryLock(name: "orders", size: 2, leaseSeconds: 30, session: primary.session))
        }
        let stored = try await hold("orders", grant.key)
        XCTAssertEqual(stored?.size, 2)
        XCTAssertEqual(stored?.fencingToken, grant.fencingToken)
        XCTAssertNotNil(stored?.leaseEndUnixMilliseconds)
        let highWater = try await fencingHighWater()
        XCTAssertEqual(highWater, grant.fencingToken)

        try await afterCommit(primary) { try primary.table.unlock(name: "orders", key: grant.key.description) }
        let afterUnlock = try await hold("orders", grant.key)
        XCTAssertNil(afterUnlock)
        XCTAssertEqual(primary.failures.withLockedValue { $0 }, [])
    }

    func testNoAnswerGoesOutWhileEtcdHasNotCommitted() async throws {
        try await startCluster(size: 1)
        let primary = Primary(client: client, keys: keys, claim: try await claimPrimaryKey(), eventLoop: loop)
        cluster!.pause(0)
        let answered = NIOLockedValueBox(false)
        try await loop.submit {
            _ = try XCTUnwrap(primary.table.tryLock(name: "frozen", leaseSeconds: 30, session: primary.session))
            primary.journal.afterSync { answered.withLockedValue { $0 = true } }
        }.get()
        try await Task.sleep(for: .seconds(1))
        XCTAssertFalse(answered.withLockedValue { $0 }, "answered while etcd was frozen")
        cluster!.resume(0)
        try await waitUntil { answered.withLockedValue { $0 } || primary.failures.withLockedValue { !$0.isEmpty } }
        XCTAssertTrue(answered.withLockedValue { $0 }, "\(primary.failures.withLockedValue { $0 })")
    }

    func testAWriteToThePrimaryKeyByAnyoneElseEndsTheJournal() async throws {
        try await startCluster(size: 1)
        let claim = try await claimPrimaryKey()
        let primary = Primary(client: client, keys: keys, claim: claim, eventLoop: loop)
        _ = try await afterCommit(primary) { try primary.table.tryLock(name: "first", leaseSeconds: 30, session: primary.session) }
        // Same term, but the sequence moved on without this journal: as a
        // stale copy of one of its own Txns would find it.
        try await client.put(EtcdPutRequest(key: keys.primary, value: Array(Self.address.utf8), lease: claim.lease))
        let answered = NIOLockedValueBox(false)
        try await loop.submit {
            _ = try XCTUnwrap(primary.table.tryLock(name: "second", leaseSeconds: 30, session: primary.session))
            primary.journal.afterSync { answered.withLockedValue { $0 = true } }
        }.get()
        try await waitUntil { primary.failures.withLockedValue { !$0.isEmpty } }
        XCTAssertFalse(answered.withLockedValue { $0 })
    }

    func testManyChangesInOneLoopTurnAreCommittedTogetherPastEtcdsOperationLimit() async throws {
        try await startCluster(size: 1)
        let primary = Primary(client: client, keys: keys, claim: try await claimPrimaryKey(), eventLoop: loop)
        let grants = try await afterCommit(primary) {
            try (0..<300).map { index in
                try XCTUnwrap(primary.table.tryLock(name: "lock-\(index)", leaseSeconds: 30, session: primary.session))
            }
        }
        let stored = try await client.range(EtcdRangeRequest(key: keys.holdsPrefix, rangeEnd: etcdPrefixEnd(keys.holdsPrefix), countOnly: true))
        XCTAssertEqual(stored.count, 300)
        let highWater = try await fencingHighWater()
        XCTAssertEqual(highWater, grants.map(\.fencingToken).max())
    }

    func testAPrimaryWhoseKeyWasReplacedWritesNothingAndNeverAnswers() async throws {
        try await startCluster(size: 1)
        let primary = Primary(client: client, keys: keys, claim: try await claimPrimaryKey(), eventLoop: loop)
        // Another replica's term: the key is gone and made again.
        try await client.deleteRange(EtcdDeleteRangeRequest(key: keys.primary))
        _ = try await claimPrimaryKey()

        let answered = NIOLockedValueBox(false)
        let grant = try await loop.submit {
            let grant = try XCTUnwrap(primary.table.tryLock(name: "stale", leaseSeconds: 30, session: primary.session))
            primary.journal.afterSync { answered.withLockedValue { $0 = true } }
            return grant
        }.get()
        try await waitUntil { primary.failures.withLockedValue { !$0.isEmpty } }
        XCTAssertFalse(answered.withLockedValue { $0 }, "a grant etcd refused was answered")
        let stored = try await hold("stale", grant.key)
        XCTAssertNil(stored)
        XCTAssertTrue(primary.failures.withLockedValue { $0[0] }.contains("primary key is gone"))
    }

    func testAWriteWhoseMemberFreezesIsSentAgainToAnotherAndCommitted() async throws {
        try await startCluster(size: 3)
        let primary = Primary(client: client, keys: keys, claim: try await claimPrimaryKey(), eventLoop: loop)
        // The client talks to the first member; it freezes before the next
        // write, which times out there without saying whether it applied.
        cluster!.pause(0)
        let grant = try await afterCommit(primary) {
            try XCTUnwrap(primary.table.tryLock(name: "survivor", leaseSeconds: 30, session: primary.session))
        }
        let stored = try await hold("survivor", grant.key)
        XCTAssertEqual(stored?.fencingToken, grant.fencingToken)
        XCTAssertEqual(primary.failures.withLockedValue { $0 }, [])
    }

    private func waitUntil(_ condition: @escaping @Sendable () -> Bool) async throws {
        let start = ContinuousClock.now
        while !condition() {
            guard ContinuousClock.now - start < .seconds(15) else { return XCTFail("condition not met within 15 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
