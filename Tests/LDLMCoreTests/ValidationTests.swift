import LDLMCore
import XCTest

final class ValidationTests: LockTableTestCase {
    func testEmptyNameIsRejectedAndNothingIsAcquired() {
        let session = table.openSession()

        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "", session: session)
        }
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "", session: session) { log.makeHandler("caller") }
        }

        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.heldLockCount(session: session), 0)
    }

    func testNameLimitCountsUTF8BytesNotCharacters() throws {
        table = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: Self.startMicroseconds), maxNameBytes: 8)
        let session = table.openSession()

        XCTAssertNotNil(try table.tryLock(name: "abcdefgh", session: session))
        // Four two-byte characters: exactly at the limit.
        XCTAssertNotNil(try table.tryLock(name: "\u{E9}\u{E9}\u{E9}\u{E9}", session: session))
        XCTAssertEqual(table.lockCount, 2)

        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "abcdefghi", session: session)
        }
        // Five characters but ten bytes.
        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}", session: session)
        }
        // Three characters, twelve bytes.
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "\u{1F512}\u{1F512}\u{1F512}", session: session) { log.makeHandler("caller") }
        }
        XCTAssertEqual(table.lockCount, 2)
    }

    func testDefaultNameLimitIs4096Bytes() throws {
        let session = table.openSession()
        XCTAssertEqual(table.maxNameBytes, 4096)

        XCTAssertNotNil(try table.tryLock(name: String(repeating: "x", count: 4096), session: session))
        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: String(repeating: "y", count: 4097), session: session)
        }
        XCTAssertEqual(table.lockCount, 1)
    }

    func testNegativeLeaseIsRejectedAndNothingIsAcquired() {
        let session = table.openSession()

        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "L", leaseSeconds: -1, session: session)
        }
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "L", leaseSeconds: -5, session: session) { log.makeHandler("caller") }
        }

        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.heldLockCount(session: session), 0)
        XCTAssertNil(table.nextDeadline)
    }

    func testNegativeWaitTimeoutIsRejectedAndNothingIsQueued() throws {
        let holder = table.openSession()
        let other = table.openSession()
        let key = try acquire(session: holder)

        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "L", waitTimeoutSeconds: -1, session: other) { log.makeHandler("caller") }
        }
        // And on a free name, where it would otherwise acquire at once.
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "free", waitTimeoutSeconds: -1, session: other) { log.makeHandler("caller") }
        }

        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 0)
        XCTAssertEqual(table.lockCount, 1)
        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertTrue(log.calls.isEmpty)
    }

    func testSizeBelowOneIsRejected() {
        let session = table.openSession()

        assertThrows(.invalidLockSize(0)) { () throws(LockFailure) in
            try table.tryLock(name: "L", size: 0, session: session)
        }
        assertThrows(.invalidLockSize(-3)) { () throws(LockFailure) in
            try table.lock(name: "L", size: -3, session: session) { log.makeHandler("caller") }
        }
        XCTAssertEqual(table.lockCount, 0)
    }

    func testRejectedCallLeavesTheLiveLockAlone() throws {
        let holder = table.openSession()
        let other = table.openSession()
        let key = try acquire(size: 2, session: holder)

        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "L", size: 2, leaseSeconds: -1, session: other) { log.makeHandler("caller") }
        }

        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.holders.map(\.key), [key])
        XCTAssertEqual(info.waiterCount, 0)
        XCTAssertEqual(table.heldLockCount(session: other), 0)
    }

    func testEndedSessionCannotAcquireOrQueue() throws {
        let session = table.openSession()
        table.closeSession(session, releasingLocks: true)

        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "L", session: session)
        }
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "L", session: session) { log.makeHandler("caller") }
        }
        // Never opened at all.
        assertInvalidArgument { () throws(LockFailure) in
            try table.tryLock(name: "L", session: SessionID(rawValue: 999))
        }
        XCTAssertEqual(table.lockCount, 0)
    }
}
