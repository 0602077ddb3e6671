@testable import LDLMCore
import XCTest

final class LeaseTests: LockTableTestCase {
    func testLeaseReleasesTheHolderWhenItPassesAndNotBefore() throws {
        let session = table.openSession()
        let deadline = clock.deadline(afterSeconds: 10)
        let key = try acquire(leaseSeconds: 10, session: session)
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.leaseDeadline), [deadline])
        XCTAssertEqual(table.nextDeadline, deadline)

        clock.advance(nanoseconds: 10_000_000_000 - 1)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [key])

        clock.advance(nanoseconds: 1)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.heldLockCount(session: session), 0)
        XCTAssertNil(table.nextDeadline)
        assertThrows(.lockDoesNotExist(name: "L")) { () throws(LockFailure) in
            try table.unlock(name: "L", key: key.description)
        }
    }

    func testHoldsOfOneLockLeasedToTheSameDeadlineExpireOneByOne() throws {
        let session = table.openSession()
        let renewed = try acquire(size: 3, leaseSeconds: 5, session: session)
        let expiring = try acquire(size: 3, leaseSeconds: 5, session: session)
        let shortened = try acquire(size: 3, leaseSeconds: 5, session: session)
        try table.renew(name: "L", key: renewed.description, leaseSeconds: 10)
        try table.renew(name: "L", key: shortened.description, leaseSeconds: 2)

        clock.advance(seconds: 2)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [renewed, expiring])

        clock.advance(seconds: 3)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [renewed])
        XCTAssertEqual(table.heldLockCount(session: session), 1)

        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertNil(table.nextDeadline)
    }

    func testLeaseExpiryGrantsTheNextWaiter() throws {
        _ = try acquire(leaseSeconds: 3, session: table.openSession())
        try enqueue("waiter", session: table.openSession())

        clock.advance(seconds: 3)
        table.expireDue()

        XCTAssertEqual(holderKeys(), [try XCTUnwrap(log.grantedKey("waiter"))])
    }

    func testLeaseOfAGrantedWaiterStartsAtTheGrant() throws {
        let key = try acquire(session: table.openSession())
        try enqueue("waiter", leaseSeconds: 5, session: table.openSession())

        clock.advance(seconds: 100)
        try table.unlock(name: "L", key: key.description)
        let granted = try XCTUnwrap(log.grantedKey("waiter"))
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.leaseDeadline), [clock.deadline(afterSeconds: 5)])

        clock.advance(seconds: 4)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [granted])
        clock.advance(seconds: 1)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
    }

    func testLeaseReleasesOnlyItsOwnSlot() throws {
        let session = table.openSession()
        _ = try acquire(size: 2, leaseSeconds: 1, session: session)
        let kept = try acquire(size: 2, session: session)

        clock.advance(seconds: 1)
        table.expireDue()

        XCTAssertEqual(holderKeys(), [kept])
        XCTAssertEqual(table.heldLockCount(session: session), 1)
    }

    func testRenewExtendsTheLeaseAndTheOldDeadlineNoLongerReleases() throws {
        let key = try acquire(leaseSeconds: 10, session: table.openSession())
        try enqueue("waiter", session: table.openSession())

        clock.advance(seconds: 5)
        try table.renew(name: "L", key: key.description, leaseSeconds: 10)
        let renewed = clock.deadline(afterSeconds: 10)
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.leaseDeadline), [renewed])

        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [key], "the original deadline has passed but was replaced")
        XCTAssertTrue(log.calls.isEmpty)
        XCTAssertEqual(table.nextDeadline, renewed)

        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [try XCTUnwrap(log.grantedKey("waiter"))])
    }

    func testRenewCanShortenTheLease() throws {
        let key = try acquire(leaseSeconds: 60, session: table.openSession())

        try table.renew(name: "L", key: key.description, leaseSeconds: 2)
        clock.advance(seconds: 2)
        table.expireDue()

        XCTAssertEqual(table.lockCount, 0)
    }

    func testRenewingWithAlternatingLeasesKeepsTheDeadlineQueueBounded() throws {
        let key = try acquire(leaseSeconds: 2, session: table.openSession())
        for round in 0..<40_000 {
            clock.advance(nanoseconds: 1_000_000)
            try table.renew(name: "L", key: key.description, leaseSeconds: round % 2 == 0 ? 2 : 1)
            table.expireDue()
        }
        XCTAssertEqual(holderKeys(), [key], "renewed all along")
        // 20,000 renews shortened the lease; the hold still has one live entry.
        XCTAssertLessThanOrEqual(table.leaseEntryCount, 1_024, "one live entry, and stale ones until the next sweep")
    }

    func testRepeatedRenewalsKeepTheLockAlive() throws {
        let key = try acquire(leaseSeconds: 3, session: table.openSession())

        for _ in 0..<20 {
            clock.advance(seconds: 2)
            try table.renew(name: "L", key: key.description, leaseSeconds: 3)
            table.expireDue()
            XCTAssertEqual(holderKeys(), [key])
        }
        clock.advance(seconds: 3)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
    }

    func testRenewGivesALeaseToAHoldThatHadNone() throws {
        let key = try acquire(session: table.openSession())
        XCTAssertNil(table.nextDeadline)

        try table.renew(name: "L", key: key.description, leaseSeconds: 7)
        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 7))

        clock.advance(seconds: 7)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
    }

    func testRenewWithAWrongKeyOrNameChangesNothing() throws {
        let key = try acquire(name: "L", session: table.openSession())
        let otherKey = try acquire(name: "M", session: table.openSession())

        for (name, badKey) in [
            ("L", unheldKey().description),
            ("L", otherKey.description),
            ("L", "not-a-key"),
            ("unknown", key.description),
        ] {
            assertThrows(.lockDoesNotExistOrInvalidKey(name: name)) { () throws(LockFailure) in
                try table.renew(name: name, key: badKey, leaseSeconds: 5)
            }
        }

        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.leaseDeadline), [nil])
        XCTAssertNil(table.nextDeadline)
        XCTAssertEqual(holderKeys(), [key])
    }

    func testRenewWithANonPositiveLeaseIsRejected() throws {
        let key = try acquire(leaseSeconds: 10, session: table.openSession())
        let deadline = table.nextDeadline

        for seconds: Int32 in [0, -1] {
            assertInvalidArgument { () throws(LockFailure) in
                try table.renew(name: "L", key: key.description, leaseSeconds: seconds)
            }
        }

        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.leaseDeadline), [deadline])
        clock.advance(seconds: 10)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
    }

    func testUnlockedLeaseDoesNotReleaseALaterHolderOfTheSameName() throws {
        let first = try acquire(leaseSeconds: 10, session: table.openSession())
        try table.unlock(name: "L", key: first.description)
        let second = try acquire(session: table.openSession())

        clock.advance(seconds: 10)
        table.expireDue()

        XCTAssertEqual(holderKeys(), [second])
    }

    func testExpiredKeyCanNeitherUnlockNorRenew() throws {
        let key = try acquire(size: 2, leaseSeconds: 1, session: table.openSession())
        _ = try acquire(size: 2, session: table.openSession())

        clock.advance(seconds: 1)
        table.expireDue()

        assertThrows(.invalidLockKey(name: "L")) { () throws(LockFailure) in
            try table.unlock(name: "L", key: key.description)
        }
        assertThrows(.lockDoesNotExistOrInvalidKey(name: "L")) { () throws(LockFailure) in
            try table.renew(name: "L", key: key.description, leaseSeconds: 5)
        }
    }
}
