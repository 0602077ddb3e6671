import LDLMCore
@testable import LDLMStateLog
import XCTest

final class RecoveredStateTests: XCTestCase {
    private func key(_ n: UInt64) -> LockKey { LockKey(high: n, low: n &* 31) }

    func testReleasedHoldsAreGoneAndLiveOnesKeepTheirNewestLease() {
        let state = RecoveredState(replaying: [
            .grant(name: "a", size: 2, key: key(1), fencingToken: 10, leaseEndUnixMilliseconds: 1_000),
            .grant(name: "a", size: 2, key: key(2), fencingToken: 11, leaseEndUnixMilliseconds: nil),
            .grant(name: "b", size: 1, key: key(3), fencingToken: 12, leaseEndUnixMilliseconds: nil),
            .release(name: "a", key: key(1)),
            .lease(name: "a", key: key(2), endUnixMilliseconds: 5_000),
            .release(name: "b", key: key(3)),
        ])
        XCTAssertEqual(state.holds, [
            RecoveredHold(name: "a", size: 2, key: key(2), fencingToken: 11, leaseEndUnixMilliseconds: 5_000),
        ])
        XCTAssertEqual(state.fencingTokenHighWater, 12, "the released grant's token still counts")
    }

    func testTheHighWaterMarkOfASnapshotOutlivesItsGrants() {
        let state = RecoveredState(replaying: [
            .fencingTokenHighWater(500),
            .grant(name: "a", size: 1, key: key(1), fencingToken: 400, leaseEndUnixMilliseconds: nil),
        ])
        XCTAssertEqual(state.fencingTokenHighWater, 500)
    }

    func testARecordForAHoldNotOnRecordChangesNothing() {
        let state = RecoveredState(replaying: [
            .release(name: "a", key: key(1)),
            .lease(name: "a", key: key(1), endUnixMilliseconds: 9),
        ])
        XCTAssertEqual(state.holds, [])
    }
}
