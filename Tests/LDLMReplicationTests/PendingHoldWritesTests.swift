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
        pending.granted(holdKey("a", 1), value)
        pending.leaseChanged(holdKey("a", 1), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 99))
        pending.released(holdKey("a", 1))
        XCTAssertTrue(pending.isEmpty)
        XCTAssertTrue(pending.takeBatch().isEmpty)
    }

    func testAReleaseOfAHoldAlreadySentIsADelete() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value)
        XCTAssertEqual(pending.takeBatch().map(\.write), [.put(value, isNew: true)])
        pending.released(holdKey("a", 1))
        let batch = pending.takeBatch()
        XCTAssertEqual(batch.map(\.key), [holdKey("a", 1)])
        XCTAssertEqual(batch.map(\.write), [.delete])
    }

    func testALeaseChangeOfASentHoldThenItsReleaseIsOneDelete() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value)
        _ = pending.takeBatch()
        pending.leaseChanged(holdKey("a", 1), HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 5))
        pending.released(holdKey("a", 1))
        XCTAssertEqual(pending.takeBatch().map(\.write), [.delete])
    }

    func testEachKeyAppearsOnceInABatchWithItsLatestValue() {
        var pending = PendingHoldWrites()
        pending.granted(holdKey("a", 1), value)
        pending.granted(holdKey("b", 2), value)
        let renewed = HoldValue(size: 1, fencingToken: 7, leaseEndUnixMilliseconds: 1234)
        pending.leaseChanged(holdKey("a", 1), renewed)
        let batch = pending.takeBatch()
        XCTAssertEqual(batch.map(\.key), [holdKey("a", 1), holdKey("b", 2)])
        XCTAssertEqual(batch.first?.write, .put(renewed, isNew: true))
    }

    func testBatchesStopAtEtcdsOperationLimitAndKeepTheRestInOrder() {
        var pending = PendingHoldWrites()
        for index in 0..<300 {
            pending.granted(holdKey("n\(index)", UInt64(index)), value)
        }
        let first = pending.takeBatch(), second = pending.takeBatch(), third = pending.takeBatch()
        XCTAssertEqual(first.count, 127)
        XCTAssertEqual(second.count, 127)
        XCTAssertEqual(third.count, 46)
        XCTAssertEqual(third.last?.key, holdKey("n299", 299))
        XCTAssertTrue(pending.isEmpty)
    }

    func testBatchesStopBeforeOneMebibyteOfKeys() {
        var pending = PendingHoldWrites()
        let longName = String(repeating: "x", count: 300 * 1024)
        for index in 0..<5 {
            pending.granted(holdKey(longName + "\(index)", UInt64(index)), value)
        }
        XCTAssertEqual(pending.takeBatch().count, 3)
        XCTAssertEqual(pending.takeBatch().count, 2)
    }

    func testTheTxnIsGuardedByThePrimarysTermAndCarriesTheFencingToken() {
        let request = keys.guardedTxn(term: 42, writes: [(holdKey("a", 1), .delete)], fencingHighWater: 900)
        XCTAssertEqual(request.compare, [EtcdCompare(key: Array("/set/primary".utf8), .equal, .createRevision(42))])
        XCTAssertEqual(request.success, [
            .deleteRange(EtcdDeleteRangeRequest(key: holdKey("a", 1))),
            .put(EtcdPutRequest(key: Array("/set/fencing".utf8), value: Array("900".utf8))),
        ])
        XCTAssertTrue(request.failure.isEmpty)
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
