import LDLMCore
import XCTest

final class SizeTests: LockTableTestCase {
    func testSizeThreeAdmitsThreeHoldersAndQueuesTheFourth() throws {
        let sessions = (0..<4).map { _ in table.openSession() }
        let keys = try sessions[..<3].map { try acquire(size: 3, session: $0) }

        XCTAssertEqual(Set(keys).count, 3, "every slot has its own key")
        XCTAssertEqual(holderKeys(), Set(keys))
        XCTAssertNil(try table.tryLock(name: "L", size: 3, session: sessions[3]))
        try enqueue("fourth", size: 3, session: sessions[3])
        XCTAssertTrue(log.calls.isEmpty)

        try table.unlock(name: "L", key: keys[1].description)

        let fourth = try XCTUnwrap(log.grantedKey("fourth"))
        XCTAssertFalse(keys.contains(fourth))
        XCTAssertEqual(holderKeys(), [keys[0], keys[2], fourth])
    }

    func testTheSkipSizeCheckFaultGrantsAFullLock() throws {
        table.grantsBeyondSize = true
        let sessions = (0..<3).map { _ in table.openSession() }
        let first = try acquire(size: 1, session: sessions[0])
        let second = try acquire(size: 1, session: sessions[1])
        let third = try XCTUnwrap(try table.tryLock(name: "L", size: 1, session: sessions[2]))

        XCTAssertEqual(holderKeys(), [first, second, third.key], "the fault lets three hold a lock of size 1")
    }

    func testOneSessionMayHoldSeveralSlots() throws {
        let session = table.openSession()
        let first = try acquire(size: 2, session: session)
        let second = try acquire(size: 2, session: session)

        XCTAssertNotEqual(first, second)
        XCTAssertEqual(table.heldLockCount(session: session), 2)
        try table.unlock(name: "L", key: first.description)
        XCTAssertEqual(holderKeys(), [second])
    }

    func testSizeMismatchWithALiveLockIsRejected() throws {
        let holder = table.openSession()
        let other = table.openSession()
        let key = try acquire(size: 3, session: holder)

        assertThrows(.lockSizeMismatch(name: "L", lockSize: 3, requestedSize: 2)) { () throws(LockFailure) in
            try table.tryLock(name: "L", size: 2, session: other)
        }
        assertThrows(.lockSizeMismatch(name: "L", lockSize: 3, requestedSize: 1)) { () throws(LockFailure) in
            try table.lock(name: "L", session: other) { log.makeHandler("caller") }
        }

        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.size, 3)
        XCTAssertEqual(info.holders.map(\.key), [key])
        XCTAssertEqual(info.waiterCount, 0)
        XCTAssertEqual(table.heldLockCount(session: other), 0)
    }

    func testSizeSticksWhenTheQueueHandsTheLockOn() throws {
        let owner = table.openSession()
        let key = try acquire(size: 2, session: owner)
        _ = try acquire(size: 2, session: owner)
        try enqueue("waiter", size: 2, session: table.openSession())
        try table.unlock(name: "L", key: key.description)

        assertThrows(.lockSizeMismatch(name: "L", lockSize: 2, requestedSize: 5)) { () throws(LockFailure) in
            try table.lock(name: "L", size: 5, session: owner) { log.makeHandler("caller") }
        }
    }

    func testSizeIsForgottenOnceTheLockIsIdle() throws {
        let session = table.openSession()
        let key = try acquire(size: 3, session: session)
        try table.unlock(name: "L", key: key.description)

        let single = try XCTUnwrap(try table.tryLock(name: "L", size: 1, session: session)?.key)

        XCTAssertEqual(table.lockInfo(name: "L")?.size, 1)
        XCTAssertNil(try table.tryLock(name: "L", size: 1, session: session))
        try table.unlock(name: "L", key: single.description)
        XCTAssertNotNil(try table.tryLock(name: "L", size: 7, session: session))
        XCTAssertEqual(table.lockInfo(name: "L")?.size, 7)
    }

    func testSizeIsForgottenWhenALeaseExpiryOrSessionCloseEmptiesTheLock() throws {
        let session = table.openSession()
        _ = try acquire(size: 3, leaseSeconds: 1, session: session)
        clock.advance(seconds: 1)
        table.expireDue()

        XCTAssertNotNil(try table.tryLock(name: "L", size: 2, session: session))

        table.closeSession(session, releasingLocks: true)
        XCTAssertNotNil(try table.tryLock(name: "L", size: 4, session: table.openSession()))
        XCTAssertEqual(table.lockInfo(name: "L")?.size, 4)
    }

    /// Strict FIFO: a slot freed while others queue belongs to the queue, not to
    /// whoever happens to call tryLock next.
    func testTryLockDoesNotOvertakeQueuedWaiters() throws {
        let owner = table.openSession()
        let late = table.openSession()
        let first = try acquire(size: 2, session: owner)
        _ = try acquire(size: 2, session: owner)
        try enqueue("w1", size: 2, session: table.openSession())
        try enqueue("w2", size: 2, session: table.openSession())

        try table.unlock(name: "L", key: first.description)

        XCTAssertEqual(log.labels, ["w1"])
        XCTAssertNil(try table.tryLock(name: "L", size: 2, session: late))
        let attempt = try table.lock(name: "L", size: 2, session: late) { log.makeHandler("late") }
        XCTAssertNotNil(attempt.ticket, "lock() queues behind w2 rather than taking a slot")
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 2)
    }

    /// A handler that hands its slot back (an undeliverable grant) must not let
    /// a newcomer's tryLock take it ahead of the next waiter.
    func testTryLockFromAGrantHandlerDoesNotOvertakeTheQueue() throws {
        let owner = table.openSession()
        let late = table.openSession()
        let first = try acquire(size: 2, session: owner)
        let second = try acquire(size: 2, session: owner)
        var tryLockResults: [LockKey?] = []
        _ = try table.lock(name: "L", size: 2, session: table.openSession()) {
            { [unowned self] outcome in
                guard case .granted(let grant) = outcome else { return }
                try? table.unlock(name: "L", key: grant.key.description)
                tryLockResults.append(try? table.tryLock(name: "L", size: 2, session: late)?.key)
            }
        }
        try enqueue("w2", size: 2, session: table.openSession())
        try enqueue("w3", size: 2, session: table.openSession())

        try table.unlock(name: "L", key: first.description)

        XCTAssertEqual(tryLockResults, [nil])
        XCTAssertEqual(log.labels, ["w2"])
        XCTAssertEqual(holderKeys(), [second, try XCTUnwrap(log.grantedKey("w2"))])
    }
}
