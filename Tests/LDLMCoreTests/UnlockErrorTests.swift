import LDLMCore
import XCTest

final class UnlockErrorTests: LockTableTestCase {
    func testUnlockOfAnUnknownNameReportsItMissing() {
        assertThrows(.lockDoesNotExist(name: "nope")) { () throws(LockFailure) in
            try table.unlock(name: "nope", key: unheldKey().description)
        }
        assertThrows(.lockDoesNotExist(name: "")) { () throws(LockFailure) in
            try table.unlock(name: "", key: "garbage")
        }
    }

    func testUnlockWithAWrongKeyKeepsTheLockHeld() throws {
        let session = table.openSession()
        let key = try acquire(session: session)
        let otherKey = try acquire(name: "M", session: session)

        for badKey in [
            unheldKey().description,
            otherKey.description,
            "",
            "not-a-key",
            String(key.description.dropLast()),
            key.description + "0",
        ] {
            assertThrows(.invalidLockKey(name: "L")) { () throws(LockFailure) in
                try table.unlock(name: "L", key: badKey)
            }
        }

        XCTAssertEqual(holderKeys(), [key])
        XCTAssertEqual(table.heldLockCount(session: session), 2)
        XCTAssertNil(try table.tryLock(name: "L", session: table.openSession()))
    }

    func testWrongKeyDoesNotGrantTheWaiter() throws {
        let key = try acquire(session: table.openSession())
        try enqueue("waiter", session: table.openSession())

        assertThrows(.invalidLockKey(name: "L")) { () throws(LockFailure) in
            try table.unlock(name: "L", key: unheldKey().description)
        }

        XCTAssertTrue(log.calls.isEmpty)
        XCTAssertEqual(holderKeys(), [key])
    }

    func testSecondUnlockOfASharedLockReportsAnInvalidKey() throws {
        let session = table.openSession()
        let key = try acquire(size: 2, session: session)
        let other = try acquire(size: 2, session: session)

        try table.unlock(name: "L", key: key.description)

        assertThrows(.invalidLockKey(name: "L")) { () throws(LockFailure) in
            try table.unlock(name: "L", key: key.description)
        }
        XCTAssertEqual(holderKeys(), [other])
    }
}
