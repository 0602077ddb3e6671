@testable import LDLMCore
import XCTest

/// The running counts a metrics scrape reads: holds, waiters and lease expiries.
final class CountsTests: LockTableTestCase {
    func testHolderCountFollowsEveryWayAHoldBeginsAndEnds() throws {
        let first = table.openSession()
        let second = table.openSession()
        let key = try acquire(name: "a", session: first)
        _ = try acquire(name: "b", size: 3, session: first)
        _ = try acquire(name: "b", size: 3, session: second)
        _ = try acquire(name: "c", session: second)
        try table.restoreHold(name: "d", size: 1, grant: LockGrant(key: LockKey(high: 1, low: 1), fencingToken: 1), leaseDeadline: clock.deadline(afterSeconds: 30))
        XCTAssertEqual(table.holderCount, 5)

        try table.unlock(name: "a", key: key.description)
        XCTAssertEqual(table.holderCount, 4)
        XCTAssertEqual(try table.forceUnlock(name: "b"), 2)
        XCTAssertEqual(table.holderCount, 2)
        table.closeSession(second, releasingLocks: true)
        XCTAssertEqual(table.holderCount, 1)
        clock.advance(seconds: 30)
        table.expireDue()
        XCTAssertEqual(table.holderCount, 0)
        XCTAssertEqual(table.lockCount, 0)
    }

    func testAKeptHoldStillCountsAndAGrantedWaiterCountsOnce() throws {
        let holder = table.openSession()
        let waiter = table.openSession()
        let key = try acquire(session: holder)
        try enqueue("w", session: waiter)
        XCTAssertEqual(table.holderCount, 1)
        XCTAssertEqual(table.waiterCount, 1)

        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(table.holderCount, 1, "the waiter took the freed slot")
        XCTAssertEqual(table.waiterCount, 0)

        table.closeSession(waiter, releasingLocks: false)
        XCTAssertEqual(table.holderCount, 1, "a hold kept past its session is still held")
    }

    func testWaiterCountDropsWhenAWaitIsCancelledOrTimesOut() throws {
        _ = try acquire(session: table.openSession())
        let cancelled = try enqueue("cancelled", session: table.openSession())
        try enqueue("timed out", waitTimeoutSeconds: 1, session: table.openSession())
        XCTAssertEqual(table.waiterCount, 2)

        table.cancelWait(cancelled)
        XCTAssertEqual(table.waiterCount, 1)
        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertEqual(table.waiterCount, 0)
    }

    func testLeaseExpiryCountsOnlyLeasesThatRanOut() throws {
        let session = table.openSession()
        let renewed = try acquire(name: "renewed", leaseSeconds: 5, session: session)
        let unlocked = try acquire(name: "unlocked", leaseSeconds: 5, session: session)
        _ = try acquire(name: "expires", leaseSeconds: 5, session: session)
        _ = try acquire(name: "also expires", leaseSeconds: 6, session: session)
        try table.unlock(name: "unlocked", key: unlocked.description)
        clock.advance(seconds: 4)
        try table.renew(name: "renewed", key: renewed.description, leaseSeconds: 60)

        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertEqual(table.leaseExpiryCount, 1)
        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertEqual(table.leaseExpiryCount, 2)
        XCTAssertEqual(table.holderCount, 1, "only the renewed hold is left")
    }
}
