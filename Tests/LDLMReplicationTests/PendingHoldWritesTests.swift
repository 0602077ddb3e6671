import LDLMCore
import LDLMEtcd
import LDLMReplication
import XCTest

final class PendingHoldWritesTests: XCTestCase {
    private let keys = ReplicaKeys(cluster: "set")
    private let value = HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: nil)

    private func holdKey(_ name: String, _ low: UInt64) -> [UInt8] {
        keys.hold(name: name, key: LockKey(high: 0x4000, low: 0x8000_0000_0000_0000 | low))
    }

    func testAHoldGrantedAndReleasedBeforeBeingSentIsNeverWritten() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value, change: 1)
        pending.leaseChanged(holdKey("a", 1), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 99), change: 2)
        pending.released(holdKey("a", 1), change: 3)
        XCTAssertTrue(pending.isEmpty)
        XCTAssertNil(pending.oldestPendingChange())
        XCTAssertTrue(pending.takeBatch().isEmpty)
    }

    func testAReleaseOfAHoldAlreadySentIsADelete() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value, change: 1)
        XCTAssertEqual(pending.takeBatch().map(\.write), [.put(value, isNew: true)])
        pending.released(holdKey("a", 1), change: 2)
        let batch = pending.takeBatch()
        XCTAssertEqual(batch.map(\.key), [holdKey("a", 1)])
        XCTAssertEqual(batch.map(\.write), [.delete])
    }

    func testALeaseChangeOfASentHoldThenItsReleaseIsOneDelete() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value, change: 1)
        _ = pending.takeBatch()
        pending.leaseChanged(holdKey("a", 1), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 5), change: 2)
        pending.released(holdKey("a", 1), change: 3)
        XCTAssertEqual(pending.takeBatch().map(\.write), [.delete])
    }

    func testEachKeyAppearsOnceInABatchWithItsLatestValue() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value, change: 1)
        pending.granted(holdKey("b", 2), value, change: 2)
        let renewed = HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 1234)
        pending.leaseChanged(holdKey("a", 1), renewed, change: 3)
        let batch = pending.takeBatch()
        XCTAssertEqual(batch.map(\.key), [holdKey("a", 1), holdKey("b", 2)])
        XCTAssertEqual(batch.first?.write, .put(renewed, isNew: true))
    }

    func testBatchesStopAtEtcdsOperationLimitAndKeepTheRestInOrder() {
        var pending = PendingHoldWrites()
        for index in 0..<300 {
            pending.granted(holdKey("n\(index)", UInt64(index)), value, change: UInt64(index + 1))
        }
        let first = pending.takeBatch()
        XCTAssertEqual(first.count, 126)
        // Changes 1...126 went in the first batch: its commit settles them.
        XCTAssertEqual(pending.oldestPendingChange(), 127)
        XCTAssertEqual(pending.takeBatch().count, 126)
        XCTAssertEqual(pending.oldestPendingChange(), 253)
        let third = pending.takeBatch()
        XCTAssertEqual(third.count, 48)
        XCTAssertEqual(third.last?.key, holdKey("n299", 299))
        XCTAssertNil(pending.oldestPendingChange())
    }

    func testAChangeCoalescedIntoAPendingWriteIsNotSettledBeforeThatWriteIsSent() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value, change: 1)
        pending.granted(holdKey("b", 2), value, change: 2)
        _ = pending.takeBatch()
        // b's grant (change 2) went out; a renewal of a (change 3) and of b (change 4) did not.
        pending.leaseChanged(holdKey("a", 1), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 5), change: 3)
        pending.leaseChanged(holdKey("b", 2), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 6), change: 4)
        XCTAssertEqual(pending.oldestPendingChange(), 3)
    }

    func testBatchesStopBeforeOneMebibyteOfKeys() {
        var pending = PendingHoldWrites()
        let longName = String(repeating: "x", count: 300 * 1024)
        for index in 0..<5 {
            pending.granted(holdKey(longName + "\(index)", UInt64(index)), value, change: UInt64(index + 1))
        }
        XCTAssertEqual(pending.takeBatch().count, 3)
        XCTAssertEqual(pending.takeBatch().count, 2)
    }

    func testTheTxnIsGuardedByTermAndSequenceMovesTheSequenceOnAndCarriesTheFencingToken() {
        let request = keys.guardedTxn(
            term: 42, sequence: 57, advertiseAddress: Array("10.0.0.1:3144".utf8), lease: 9,
            writes: [(holdKey("a", 1), .delete)], fencingHighWater: 900
        )
        let primary = Array("/set/primary".utf8)
        XCTAssertEqual(request.compare, [
            EtcdCompare(key: primary, .equal, .createRevision(42)), EtcdCompare(key: primary, .equal, .modRevision(57)),
        ])
        XCTAssertEqual(request.success, [
            .deleteRange(EtcdDeleteRangeRequest(key: holdKey("a", 1))),
            .put(EtcdPutRequest(key: Array("/set/fencing".utf8), value: Array("900".utf8))),
            .put(EtcdPutRequest(key: primary, value: Array("10.0.0.1:3144".utf8), lease: 9)),
        ])
        XCTAssertEqual(request.failure, [.range(EtcdRangeRequest(key: primary))])
    }
}

final class ReplicaKeysTests: XCTestCase {
    func testAHoldKeyParsesBackEvenWhenTheNameHasSlashes() throws {
        let keys = ReplicaKeys(cluster: "c1")
        let key = try XCTUnwrap(LockKey("0f0e0d0c-0b0a-4908-8706-050403020100"))
        let etcdKey = keys.hold(name: "jobs/nightly/report", key: key)
        XCTAssertEqual(String(decoding: etcdKey, as: UTF8.self), "/c1/holds/jobs/nightly/report/0f0e0d0c-0b0a-4908-8706-050403020100")
        let parsed = try XCTUnwrap(keys.parseHold(etcdKey))
        XCTAssertEqual(parsed.name, "jobs/nightly/report")
        XCTAssertEqual(parsed.key, key)
    }

    func testKeysOutsideTheLayoutAreNotHolds() {
        let keys = ReplicaKeys(cluster: "c1")
        XCTAssertNil(keys.parseHold(Array("/c1/holds/name/not-a-key".utf8)))
        XCTAssertNil(keys.parseHold(Array("/c2/holds/name/0f0e0d0c-0b0a-4908-8706-050403020100".utf8)))
        XCTAssertNil(keys.parseHold(Array("/c1/holds//0f0e0d0c-0b0a-4908-8706-050403020100".utf8)))
    }

    func testHoldValuesRoundTripAndRejectOtherSizes() {
        let leased = HoldValue(size: 3, fencingToken: 1_800_000_000_000_123, leaseEndUnixMilliseconds: 1_764_000_000_000)
        XCTAssertEqual(HoldValue(decoding: leased.encoded), leased)
        let unleased = HoldValue(size: 1, fencingToken: 5, leaseEndUnixMilliseconds: nil)
        XCTAssertEqual(HoldValue(decoding: unleased.encoded), unleased)
        XCTAssertNil(HoldValue(decoding: Array(leased.encoded.dropLast())))
        XCTAssertNil(HoldValue(decoding: HoldValue(size: 0, fencingToken: 5, leaseEndUnixMilliseconds: nil).encoded))
    }
}

final class PrimacyLeaseTests: XCTestCase {
    func testPrimacyEndsAFifthBeforeTheTTLCountedFromTheLastConfirmedSend() {
        var lease = PrimacyLease(ttl: .seconds(5), sentAt: 1_000)
        XCTAssertTrue(lease.isValid(at: 1_000 + 3_999_999_999))
        XCTAssertFalse(lease.isValid(at: 1_000 + 4_000_000_000))
        lease.renewed(sentAt: 2_000_000_000)
        XCTAssertTrue(lease.isValid(at: 5_999_999_999))
        XCTAssertFalse(lease.isValid(at: 6_000_000_000))
    }

    func testAnOldKeepaliveAnsweredLateDoesNotShortenPrimacy() {
        var lease = PrimacyLease(ttl: .seconds(5), sentAt: 10_000_000_000)
        lease.renewed(sentAt: 1_000_000_000)
        XCTAssertTrue(lease.isValid(at: 13_000_000_000))
    }
}
