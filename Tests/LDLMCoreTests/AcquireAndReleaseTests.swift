import LDLMCore
import XCTest

final class AcquireAndReleaseTests: LockTableTestCase {
    func testTryLockGrantsAFreeLockToTheCaller() throws {
        let session = table.openSession()

        let key = try XCTUnwrap(try table.tryLock(name: "L", session: session)?.key)

        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.name, "L")
        XCTAssertEqual(info.size, 1)
        XCTAssertEqual(info.holders.map(\.key), [key])
        XCTAssertEqual(info.holders.map(\.session), [session])
        XCTAssertEqual(info.holders.map(\.leaseDeadline), [nil])
        XCTAssertEqual(info.waiterCount, 0)
        XCTAssertEqual(table.lockCount, 1)
        XCTAssertEqual(table.heldLockCount(session: session), 1)
    }

    func testSecondTryLockOnAHeldNameReturnsNil() throws {
        let first = table.openSession()
        let second = table.openSession()
        let key = try acquire(session: first)

        XCTAssertNil(try table.tryLock(name: "L", session: second))
        // A session gets no special treatment on a lock it already holds.
        XCTAssertNil(try table.tryLock(name: "L", session: first))
        XCTAssertEqual(holderKeys(), [key])
        XCTAssertEqual(table.heldLockCount(session: second), 0)
    }

    func testUnlockFreesTheLockForTheNextCaller() throws {
        let first = table.openSession()
        let second = table.openSession()
        let key = try acquire(session: first)

        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(table.heldLockCount(session: first), 0)
        let next = try XCTUnwrap(try table.tryLock(name: "L", session: second)?.key)
        XCTAssertNotEqual(next, key)
        XCTAssertEqual(holderKeys(), [next])
    }

    func testIdleLockRecordIsRemoved() throws {
        let session = table.openSession()
        var keys: [String: LockKey] = [:]
        for index in 0..<100 {
            keys["lock-\(index)"] = try acquire(name: "lock-\(index)", session: session)
        }
        XCTAssertEqual(table.lockCount, 100)

        for (name, key) in keys {
            try table.unlock(name: name, key: key.description)
        }

        XCTAssertEqual(table.lockCount, 0)
        XCTAssertNil(table.lockInfo(name: "lock-0"))
        XCTAssertEqual(table.heldLockCount(session: session), 0)
    }

    func testUnlockingAnIdleLockAgainReportsItMissing() throws {
        let session = table.openSession()
        let key = try acquire(session: session)
        try table.unlock(name: "L", key: key.description)

        assertThrows(.lockDoesNotExist(name: "L")) { () throws(LockFailure) in
            try table.unlock(name: "L", key: key.description)
        }
    }

    func testLockOnAFreeNameAcquiresAtOnceWithoutCallingTheHandler() throws {
        let session = table.openSession()

        let attempt = try table.lock(name: "L", session: session) { log.makeHandler("caller") }

        let key = try XCTUnwrap(attempt.acquiredKey)
        XCTAssertEqual(holderKeys(), [key])
        try table.unlock(name: "L", key: key.description)
        XCTAssertTrue(log.calls.isEmpty)
        XCTAssertTrue(log.madeHandlers.isEmpty, "a call taken at once makes no handler")
    }

    func testOnlyAQueuedLockMakesAnOutcomeHandler() throws {
        let holder = table.openSession()
        let other = table.openSession()
        let key = try XCTUnwrap(try table.lock(name: "L", session: holder) { log.makeHandler("at once") }.acquiredKey)
        assertThrows(.lockSizeMismatch(name: "L", lockSize: 1, requestedSize: 2)) { () throws(LockFailure) in
            try table.lock(name: "L", size: 2, session: other) { log.makeHandler("mismatch") }
        }
        assertInvalidArgument { () throws(LockFailure) in
            try table.lock(name: "L", waitTimeoutSeconds: -1, session: other) { log.makeHandler("invalid") }
        }
        XCTAssertEqual(log.madeHandlers, [])

        let attempt = try table.lock(name: "L", session: other) { log.makeHandler("queued") }

        XCTAssertNotNil(attempt.ticket)
        XCTAssertEqual(log.madeHandlers, ["queued"])
        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(log.madeHandlers, ["queued"])
        XCTAssertNotNil(log.grantedKey("queued"))
    }

    func testKeysStayDistinctOverManyGrants() throws {
        let session = table.openSession()
        let count = 3 * LockKeyGenerator.keysPerRefill + 1
        var keys = Set<LockKey>()
        for index in 0..<count {
            keys.insert(try acquire(name: "L\(index)", session: session))
        }

        XCTAssertEqual(keys.count, count)
        XCTAssertEqual(table.heldLockCount(session: session), count)
    }

    func testLocksWithDifferentNamesAreIndependent() throws {
        let session = table.openSession()
        let a = try acquire(name: "a", session: session)
        let b = try acquire(name: "b", session: session)

        try table.unlock(name: "a", key: a.description)

        XCTAssertNil(table.lockInfo(name: "a"))
        XCTAssertEqual(holderKeys("b"), [b])
        XCTAssertEqual(table.heldLockCount(session: session), 1)
    }

    func testEachAcquisitionGetsAFreshKey() throws {
        let session = table.openSession()
        var seen: Set<LockKey> = []
        for _ in 0..<200 {
            let key = try acquire(session: session)
            XCTAssertTrue(seen.insert(key).inserted)
            try table.unlock(name: "L", key: key.description)
        }
    }

    func testNamesAreCaseSensitive() throws {
        let session = table.openSession()
        _ = try acquire(name: "Lock", session: session)

        XCTAssertNotNil(try table.tryLock(name: "lock", session: session))
        XCTAssertEqual(table.lockCount, 2)
    }

    /// Names travel as protobuf bytes and the Go server keys its map by those
    /// bytes, so two different UTF-8 spellings are two different locks even when
    /// Swift's `String ==` (Unicode canonical equivalence) calls them equal.
    func testNamesThatDifferInUTF8BytesAreDifferentLocks() throws {
        let session = table.openSession()
        let precomposed = "caf\u{E9}"
        let decomposed = "cafe\u{301}"
        XCTAssertNotEqual(Array(precomposed.utf8), Array(decomposed.utf8))
        _ = try acquire(name: precomposed, size: 1, session: session)

        XCTAssertNil(table.lockInfo(name: decomposed))
        XCTAssertNotNil(try table.tryLock(name: decomposed, size: 2, session: session))
        XCTAssertEqual(table.lockCount, 2)
    }
}
