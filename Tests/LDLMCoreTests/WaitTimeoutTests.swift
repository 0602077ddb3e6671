import LDLMCore
import XCTest

final class WaitTimeoutTests: LockTableTestCase {
    func testWaiterTimesOutWhenItsTimeoutPassesAndNotBefore() throws {
        let key = try acquire(session: table.openSession())
        let deadline = clock.deadline(afterSeconds: 5)
        try enqueue("waiter", waitTimeoutSeconds: 5, session: table.openSession())
        XCTAssertEqual(table.nextDeadline, deadline)

        clock.advance(nanoseconds: 5_000_000_000 - 1)
        table.expireDue()
        XCTAssertTrue(log.calls.isEmpty, "one nanosecond early")
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 1)

        clock.advance(nanoseconds: 1)
        table.expireDue()
        XCTAssertEqual(log.outcomes(of: "waiter"), [.timedOut])
        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.waiterCount, 0)
        XCTAssertEqual(info.holders.map(\.key), [key], "the holder is untouched")
        XCTAssertNil(table.nextDeadline)
    }

    func testTimeoutNeedsExpireDueNotJustTime() throws {
        _ = try acquire(session: table.openSession())
        try enqueue("waiter", waitTimeoutSeconds: 1, session: table.openSession())

        clock.advance(seconds: 60)

        XCTAssertTrue(log.calls.isEmpty)
        table.expireDue()
        XCTAssertEqual(log.outcomes(of: "waiter"), [.timedOut])
    }

    func testTimedOutWaiterIsNeverGrantedLater() throws {
        let key = try acquire(session: table.openSession())
        let waiterSession = table.openSession()
        try enqueue("waiter", waitTimeoutSeconds: 2, session: waiterSession)

        clock.advance(seconds: 2)
        table.expireDue()
        try table.unlock(name: "L", key: key.description)
        clock.advance(seconds: 100)
        table.expireDue()

        XCTAssertEqual(log.outcomes(of: "waiter"), [.timedOut])
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.heldLockCount(session: waiterSession), 0)
    }

    func testRepeatedExpireDueCallsTheHandlerOnce() throws {
        _ = try acquire(session: table.openSession())
        try enqueue("waiter", waitTimeoutSeconds: 1, session: table.openSession())

        clock.advance(seconds: 1)
        for _ in 0..<3 {
            table.expireDue()
            clock.advance(seconds: 1)
        }

        XCTAssertEqual(log.calls.count, 1)
    }

    func testZeroWaitTimeoutWaitsForever() throws {
        let key = try acquire(session: table.openSession())
        try enqueue("patient", waitTimeoutSeconds: 0, session: table.openSession())
        XCTAssertNil(table.nextDeadline)

        clock.advance(seconds: 10 * 365 * 24 * 3600)
        table.expireDue()
        XCTAssertTrue(log.calls.isEmpty)

        try table.unlock(name: "L", key: key.description)
        XCTAssertNotNil(log.grantedKey("patient"))
    }

    func testTimeoutOfTheHeadWaiterLeavesTheRestQueuedInOrder() throws {
        var key = try acquire(session: table.openSession())
        try enqueue("impatient", waitTimeoutSeconds: 3, session: table.openSession())
        try enqueue("second", session: table.openSession())
        try enqueue("third", waitTimeoutSeconds: 60, session: table.openSession())

        clock.advance(seconds: 3)
        table.expireDue()
        XCTAssertEqual(log.labels, ["impatient"])
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 2)

        try table.unlock(name: "L", key: key.description)
        key = try XCTUnwrap(log.grantedKey("second"))
        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(log.labels, ["impatient", "second", "third"])
        XCTAssertNotNil(log.grantedKey("third"))
    }

    func testWaitersTimeOutIndependently() throws {
        _ = try acquire(session: table.openSession())
        try enqueue("late", waitTimeoutSeconds: 9, session: table.openSession())
        try enqueue("early", waitTimeoutSeconds: 4, session: table.openSession())
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 4))

        clock.advance(seconds: 4)
        table.expireDue()
        XCTAssertEqual(log.labels, ["early"])
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 5))

        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertEqual(log.labels, ["early", "late"])
    }

    func testGrantedWaiterDoesNotTimeOutLater() throws {
        let key = try acquire(session: table.openSession())
        try enqueue("waiter", waitTimeoutSeconds: 5, session: table.openSession())

        clock.advance(seconds: 1)
        try table.unlock(name: "L", key: key.description)
        let granted = try XCTUnwrap(log.grantedKey("waiter"))
        clock.advance(seconds: 10)
        table.expireDue()

        XCTAssertEqual(log.calls.count, 1)
        XCTAssertEqual(holderKeys(), [granted])
    }

    func testTimeoutHandlerMayQueueAgain() throws {
        let key = try acquire(session: table.openSession())
        let waiterSession = table.openSession()
        var requeued: LockAttempt?
        _ = try table.lock(name: "L", waitTimeoutSeconds: 1, session: waiterSession) {
            { [unowned self] outcome in
                log.handler("first try")(outcome)
                requeued = try? table.lock(name: "L", session: waiterSession) { log.makeHandler("second try") }
            }
        }

        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertNotNil(requeued?.ticket)
        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(log.labels, ["first try", "second try"])
        XCTAssertNotNil(log.grantedKey("second try"))
    }

    func testNextDeadlineIsTheEarliestOfLeasesAndWaits() throws {
        XCTAssertNil(table.nextDeadline)
        let session = table.openSession()
        _ = try acquire(name: "a", leaseSeconds: 30, session: session)
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 30))

        try enqueue("waiter", name: "a", waitTimeoutSeconds: 10, session: table.openSession())
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 10))

        _ = try acquire(name: "b", leaseSeconds: 20, session: session)
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 10))
    }

    /// The owner may call expireDue late (a busy event loop). The wait ran out
    /// at 5 s and the lease only at 10 s, so at 10 s the waiter should see
    /// `.timedOut`, as it would have had expireDue run on time.
    func testLateExpireDueStillTimesOutAWaitThatEndedBeforeTheLeaseDid() throws {
        _ = try acquire(leaseSeconds: 10, session: table.openSession())
        try enqueue("waiter", waitTimeoutSeconds: 5, session: table.openSession())

        clock.advance(seconds: 10)
        table.expireDue()

        XCTAssertEqual(log.outcomes(of: "waiter"), [.timedOut])
        XCTAssertEqual(table.lockCount, 0)
    }

    /// Same deadlines, punctual expireDue: the control for the test above.
    func testPunctualExpireDueTimesOutTheWaitBeforeTheLeaseEnds() throws {
        _ = try acquire(leaseSeconds: 10, session: table.openSession())
        try enqueue("waiter", waitTimeoutSeconds: 5, session: table.openSession())

        while let deadline = table.nextDeadline {
            clock.nanosecondsNow = deadline
            table.expireDue()
        }

        XCTAssertEqual(log.outcomes(of: "waiter"), [.timedOut])
        XCTAssertEqual(table.lockCount, 0)
    }
}
