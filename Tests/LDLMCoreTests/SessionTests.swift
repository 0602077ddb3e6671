import LDLMCore
import XCTest

final class SessionTests: LockTableTestCase {
    func testSessionsGetDistinctIDs() {
        let ids = (0..<10).map { _ in table.openSession() }

        XCTAssertEqual(Set(ids).count, 10)
        XCTAssertEqual(table.sessionCount, 10)
    }

    func testClosingAndReleasingFreesEveryHoldOfTheSession() throws {
        let closing = table.openSession()
        let staying = table.openSession()
        _ = try acquire(name: "a", session: closing)
        _ = try acquire(name: "b", size: 3, session: closing)
        _ = try acquire(name: "b", size: 3, session: closing)
        let kept = try acquire(name: "b", size: 3, session: staying)

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(table.sessionCount, 1)
        XCTAssertEqual(table.heldLockCount(session: closing), 0)
        XCTAssertNil(table.lockInfo(name: "a"))
        XCTAssertEqual(holderKeys("b"), [kept])
        XCTAssertEqual(table.lockCount, 1)
    }

    func testHoldsReleasedInAnyOrderLeaveTheRestToTheClose() throws {
        let closing = table.openSession()
        let staying = table.openSession()
        var keys: [String: LockKey] = [:]
        for name in ["a0", "a1", "a2", "a3", "a4"] {
            keys[name] = try acquire(name: name, session: closing)
        }
        let firstShared = try acquire(name: "shared", size: 3, session: closing)
        let kept = try acquire(name: "shared", size: 3, session: staying)
        _ = try acquire(name: "shared", size: 3, session: closing)
        try table.unlock(name: "a1", key: keys["a1"]!.description)
        try table.unlock(name: "shared", key: firstShared.description)
        try table.unlock(name: "a4", key: keys["a4"]!.description)
        XCTAssertEqual(table.heldLockCount(session: closing), 4)

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(table.heldLockCount(session: staying), 1)
        XCTAssertEqual(holderKeys("shared"), [kept])
        XCTAssertEqual(table.lockCount, 1)
    }

    func testAHoldKeptPastItsSessionGoesWithTheSessionThatRenewsIt() throws {
        let first = table.openSession()
        let keyA = try acquire(name: "a", session: first)
        let keyB = try acquire(name: "b", session: first)
        table.closeSession(first, releasingLocks: false)
        let adopting = table.openSession()
        _ = try acquire(name: "own", session: adopting)

        try table.renew(name: "b", key: keyB.description, leaseSeconds: 60, session: adopting)
        XCTAssertEqual(table.heldLockCount(session: adopting), 2)
        try table.unlock(name: "own", key: try XCTUnwrap(table.lockInfo(name: "own")?.holders.first?.key).description)
        table.closeSession(adopting, releasingLocks: true)

        XCTAssertNil(table.lockInfo(name: "b"))
        XCTAssertEqual(holderKeys("a"), [keyA])
    }

    func testClosingAndReleasingGrantsWaitersOfOtherSessionsInOrder() throws {
        let closing = table.openSession()
        _ = try acquire(size: 2, session: closing)
        _ = try acquire(size: 2, session: closing)
        try enqueue("w1", size: 2, session: table.openSession())
        try enqueue("w2", size: 2, session: table.openSession())
        try enqueue("w3", size: 2, session: table.openSession())

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(log.labels, ["w1", "w2"])
        let granted = try [XCTUnwrap(log.grantedKey("w1")), XCTUnwrap(log.grantedKey("w2"))]
        XCTAssertEqual(holderKeys(), Set(granted))
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 1)
    }

    func testClosingWithdrawsTheSessionsWaitersWithoutCallingThem() throws {
        let owner = table.openSession()
        let closing = table.openSession()
        let key = try acquire(session: owner)
        let keyM = try acquire(name: "M", session: owner)
        let ticket = try enqueue("closing-1", waitTimeoutSeconds: 5, session: closing)
        try enqueue("other", session: table.openSession())
        try enqueue("closing-2", name: "M", session: closing)

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 1)
        XCTAssertEqual(table.lockInfo(name: "M")?.waiterCount, 0)
        XCTAssertFalse(table.cancelWait(ticket))
        clock.advance(seconds: 5)
        table.expireDue()
        try table.unlock(name: "L", key: key.description)
        try table.unlock(name: "M", key: keyM.description)

        XCTAssertEqual(log.labels, ["other"], "the closed session's waiters are never called")
        XCTAssertEqual(table.lockCount, 1)
    }

    func testWaiterOfAClosedSessionIsSkippedByTheNextRelease() throws {
        let key = try acquire(session: table.openSession())
        let closing = table.openSession()
        try enqueue("closed", session: closing)
        try enqueue("next", session: table.openSession())

        table.closeSession(closing, releasingLocks: false)
        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(log.labels, ["next"])
    }

    func testClosingWithoutReleasingKeepsTheHoldsUsableByKey() throws {
        let closing = table.openSession()
        let key = try acquire(session: closing)
        try enqueue("waiter", session: table.openSession())

        table.closeSession(closing, releasingLocks: false)

        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.holders.map(\.key), [key])
        XCTAssertEqual(info.holders.map(\.session), [nil])
        XCTAssertNil(try table.tryLock(name: "L", session: table.openSession()))
        XCTAssertTrue(log.calls.isEmpty)

        try table.unlock(name: "L", key: key.description)
        XCTAssertNotNil(log.grantedKey("waiter"))
    }

    func testClosingWithoutReleasingKeepsTheLeaseRunning() throws {
        let closing = table.openSession()
        let key = try acquire(leaseSeconds: 4, session: closing)
        try enqueue("waiter", session: table.openSession())

        table.closeSession(closing, releasingLocks: false)
        try table.renew(name: "L", key: key.description, leaseSeconds: 6)
        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [key])

        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [try XCTUnwrap(log.grantedKey("waiter"))])
    }

    func testClosingTwiceOrClosingAnUnknownSessionIsHarmless() throws {
        let session = table.openSession()
        let key = try acquire(session: session)
        table.closeSession(session, releasingLocks: false)

        table.closeSession(session, releasingLocks: true)
        table.closeSession(SessionID(rawValue: 4242), releasingLocks: true)

        XCTAssertEqual(holderKeys(), [key], "the second close must not release the kept hold")
        XCTAssertEqual(table.sessionCount, 0)
    }

    func testClosingReleasesHoldsTheSessionGotFromTheQueue() throws {
        let owner = table.openSession()
        let waiterSession = table.openSession()
        let key = try acquire(session: owner)
        try enqueue("waiter", session: waiterSession)
        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(table.heldLockCount(session: waiterSession), 1)

        table.closeSession(waiterSession, releasingLocks: true)

        XCTAssertEqual(table.lockCount, 0)
    }

    func testHoldReleasedByKeyBeforeTheCloseIsNotReleasedTwice() throws {
        let closing = table.openSession()
        let key = try acquire(session: closing)
        try table.unlock(name: "L", key: key.description)
        let newOwner = try acquire(session: table.openSession())

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(holderKeys(), [newOwner])
    }

    func testLeaseExpiryRemovesTheHoldFromItsSession() throws {
        let session = table.openSession()
        _ = try acquire(leaseSeconds: 1, session: session)
        clock.advance(seconds: 1)
        table.expireDue()
        let newOwner = try acquire(session: table.openSession())

        XCTAssertEqual(table.heldLockCount(session: session), 0)
        table.closeSession(session, releasingLocks: true)
        XCTAssertEqual(holderKeys(), [newOwner])
    }
}
