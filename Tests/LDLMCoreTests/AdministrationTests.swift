import LDLMCore
import XCTest

/// What an administrator can see and do: list every lock, release a lock from
/// all its holders at once.
final class AdministrationTests: LockTableTestCase {
    func testAllLocksListsEveryLiveLockWithHoldersLeasesAndWaiters() throws {
        let owner = table.openSession()
        let plain = try acquire(name: "plain", session: owner)
        let leased = try acquire(name: "sized", size: 3, leaseSeconds: 30, session: owner)
        let waiterSession = table.openSession()
        try enqueue("waiter", name: "plain", session: waiterSession)

        let locks = Dictionary(uniqueKeysWithValues: table.allLocks.map { ($0.name, $0) })

        XCTAssertEqual(Set(locks.keys), ["plain", "sized"])
        XCTAssertEqual(locks["plain"]?.holders.map(\.key), [plain])
        XCTAssertEqual(locks["plain"]?.holders.first?.session, owner)
        XCTAssertNil(locks["plain"]?.holders.first?.leaseDeadline)
        XCTAssertEqual(locks["plain"]?.waiterCount, 1)
        XCTAssertEqual(locks["sized"]?.size, 3)
        XCTAssertEqual(locks["sized"]?.holders.first?.key, leased)
        XCTAssertEqual(locks["sized"]?.holders.first?.leaseDeadline, clock.deadline(afterSeconds: 30))
        XCTAssertEqual(locks["sized"]?.waiterCount, 0)
    }

    func testAllLocksFollowsGrowthAndRemoval() throws {
        let session = table.openSession()
        let keys = try (0..<100).map { try acquire(name: "lock-\($0)", session: session) }
        XCTAssertEqual(Set(table.allLocks.map(\.name)), Set((0..<100).map { "lock-\($0)" }))

        for index in stride(from: 0, to: 100, by: 2) {
            try table.unlock(name: "lock-\(index)", key: keys[index].description)
        }
        XCTAssertEqual(Set(table.allLocks.map(\.name)), Set(stride(from: 1, to: 100, by: 2).map { "lock-\($0)" }))
    }

    func testForceUnlockReleasesEveryHolderAndGrantsWaitersInOrder() throws {
        let first = table.openSession()
        let second = table.openSession()
        let firstKey = try acquire(size: 2, session: first)
        _ = try acquire(size: 2, session: second)
        try enqueue("w1", size: 2, session: table.openSession())
        try enqueue("w2", size: 2, session: table.openSession())
        try enqueue("w3", size: 2, session: table.openSession())

        XCTAssertEqual(try table.forceUnlock(name: "L"), 2)

        XCTAssertEqual(log.labels, ["w1", "w2"])
        let granted = try [XCTUnwrap(log.grantedKey("w1")), XCTUnwrap(log.grantedKey("w2"))]
        XCTAssertEqual(holderKeys(), Set(granted), "only the waiters hold it now")
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 1)
        XCTAssertEqual(table.heldLockCount(session: first), 0)
        XCTAssertEqual(table.heldLockCount(session: second), 0)
        assertThrows(.invalidLockKey(name: "L")) { () throws(LockFailure) in try table.unlock(name: "L", key: firstKey.description) }
    }

    func testForceUnlockWithoutWaitersRemovesTheLock() throws {
        let session = table.openSession()
        _ = try acquire(leaseSeconds: 5, session: session)

        XCTAssertEqual(try table.forceUnlock(name: "L"), 1)

        XCTAssertNil(table.lockInfo(name: "L"))
        XCTAssertEqual(table.lockCount, 0)
        clock.advance(seconds: 5)
        table.expireDue()
        XCTAssertNil(table.nextDeadline, "the released hold's lease entry went stale and was dropped")
        XCTAssertNotNil(try table.tryLock(name: "L", size: 4, session: session), "a new size is accepted: the lock is gone")
    }

    func testForceUnlockOfAnUnknownLockFails() {
        assertThrows(.lockDoesNotExist(name: "nope")) { () throws(LockFailure) in try table.forceUnlock(name: "nope") }
    }

    func testAGrantedWaitersLeaseIsScheduled() throws {
        _ = try acquire(session: table.openSession())
        try enqueue("leased", leaseSeconds: 7, session: table.openSession())

        XCTAssertEqual(try table.forceUnlock(name: "L"), 1)

        XCTAssertEqual(table.nextDeadline, clock.deadline(afterSeconds: 7))
        clock.advance(seconds: 7)
        table.expireDue()
        XCTAssertNil(table.lockInfo(name: "L"), "the new holder's lease ran out")
    }
}
