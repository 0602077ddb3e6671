import LDLMCore
import XCTest

final class LimitsTests: LockTableTestCase {
    private func useTable(maxLocks: Int = LockTable.defaultMaxLocks, maxWaiters: Int = LockTable.defaultMaxWaiters) {
        table = LockTable(
            clock: clock,
            fencingTokens: FencingTokenSource(startingAbove: Self.startMicroseconds),
            maxLocks: maxLocks,
            maxWaiters: maxWaiters
        )
    }

    func testDefaultsAreTheDocumentedOnes() {
        XCTAssertEqual(table.maxLocks, 1_000_000)
        XCTAssertEqual(table.maxWaiters, 10_000)
    }

    func testNewNameBeyondMaxLocksIsRefusedWhileExistingLocksStayUsable() throws {
        useTable(maxLocks: 2)
        let session = table.openSession()
        let other = table.openSession()
        let first = try acquire(name: "a", session: session)
        _ = try acquire(name: "b", session: session)

        assertThrows(.tooManyLocks(name: "c", limit: 2)) { () throws(LockFailure) in try table.tryLock(name: "c", session: session) }
        assertThrows(.tooManyLocks(name: "c", limit: 2)) { () throws(LockFailure) in
            try table.lock(name: "c", session: session) { log.makeHandler("c") }
        }
        XCTAssertEqual(log.madeHandlers, [], "a refused call never queues")
        XCTAssertEqual(table.lockCount, 2)
        XCTAssertNil(table.lockInfo(name: "c"))

        // A held lock can still be tried and queued on.
        XCTAssertNil(try table.tryLock(name: "a", session: other))
        try enqueue("waiter", name: "a", session: other)
        try table.unlock(name: "a", key: first.description)
        XCTAssertNotNil(log.grant("waiter"))

        // A freed slot lets a new name in.
        _ = try table.forceUnlock(name: "b")
        XCTAssertNotNil(try table.tryLock(name: "c", session: session))
    }

    func testQueueingBeyondMaxWaitersIsRefusedButTakingAFreeSlotIsNot() throws {
        useTable(maxWaiters: 2)
        let holder = table.openSession()
        let waiter = table.openSession()
        let key = try acquire(name: "L", session: holder)
        try enqueue("first", session: waiter)
        try enqueue("second", session: waiter)

        assertThrows(.tooManyWaiters(name: "L", limit: 2)) { () throws(LockFailure) in
            try table.lock(name: "L", session: waiter) { log.makeHandler("third") }
        }
        XCTAssertEqual(log.madeHandlers, ["first", "second"])
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 2)
        XCTAssertEqual(table.waitingCallCount(session: waiter), 2)

        // Another lock has a queue of its own.
        _ = try acquire(name: "M", session: holder)
        try enqueue("elsewhere", name: "M", session: waiter)

        // Once the queue moves, there is room again.
        try table.unlock(name: "L", key: key.description)
        XCTAssertNotNil(log.grant("first"))
        try enqueue("third", session: waiter)
    }

    func testLimitMessagesNameTheLimit() {
        XCTAssertEqual(
            LockFailure.tooManyLocks(name: "x", limit: 5).message,
            #"cannot create lock "x": the server already has 5 locks, its limit (max_locks)"#)
        XCTAssertEqual(
            LockFailure.tooManyWaiters(name: "x", limit: 3).message,
            #"cannot wait for lock "x": 3 calls already wait for it, the server's limit (max_waiters)"#)
        XCTAssertTrue(LockFailure.tooManyLocks(name: "x", limit: 5).isResourceExhausted)
        XCTAssertFalse(LockFailure.invalidLockSize(0).isResourceExhausted)
    }
}
