import LDLMCore
import XCTest

/// Records what the table tells its journal, and what a waiter's handler saw
/// of it when called: a state file must hear of a grant before its holder.
private final class RecordingJournal: LockTableJournal {
    enum Entry: Equatable {
        case granted(String, LockKey, token: UInt64, lease: UInt64?)
        case released(String, LockKey)
        case leased(String, LockKey, UInt64)
    }

    var entries: [Entry] = []

    func holdGranted(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64?) {
        entries.append(.granted(name, grant.key, token: grant.fencingToken, lease: leaseDeadline))
    }

    func holdReleased(name: String, key: LockKey) {
        entries.append(.released(name, key))
    }

    func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) {
        entries.append(.leased(name, grant.key, leaseDeadline))
    }
}

final class JournalAndRestoreTests: XCTestCase {
    private let clock = FakeClock()
    private lazy var table = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: 100))
    private let journal = RecordingJournal()

    func testEveryChangeToHoldersIsJournaledBeforeAWaiterHearsOfIt() throws {
        table.journal = journal
        let a = table.openSession(), b = table.openSession()
        let first = try XCTUnwrap(table.tryLock(name: "x", leaseSeconds: 5, session: a))
        var entriesWhenGranted: [RecordingJournal.Entry] = []
        _ = try table.lock(name: "x", session: b) {
            { [journal] _ in entriesWhenGranted = journal.entries }
        }
        try table.renew(name: "x", key: first.key.description, leaseSeconds: 9)
        try table.unlock(name: "x", key: first.key.description)
        let second = try XCTUnwrap(entriesWhenGranted.last)
        guard case .granted("x", let secondKey, token: 102, lease: nil) = second else {
            return XCTFail("the waiter's grant was not journaled before its handler ran: \(entriesWhenGranted)")
        }
        table.closeSession(b, releasingLocks: true)
        XCTAssertEqual(journal.entries, [
            .granted("x", first.key, token: 101, lease: clock.deadline(afterSeconds: 5)),
            .leased("x", first.key, clock.deadline(afterSeconds: 9)),
            .released("x", first.key),
            .granted("x", secondKey, token: 102, lease: nil),
            .released("x", secondKey),
        ])
    }

    func testLeaseExpiryAndForcedUnlockAreJournaledAndAFailedTryLockIsNot() throws {
        table.journal = journal
        let a = table.openSession(), b = table.openSession()
        let leaseEnd = clock.deadline(afterSeconds: 1)
        let leased = try XCTUnwrap(table.tryLock(name: "x", leaseSeconds: 1, session: a))
        XCTAssertNil(try table.tryLock(name: "x", session: b))
        let forced = try XCTUnwrap(table.tryLock(name: "y", session: b))
        _ = try table.forceUnlock(name: "y")
        clock.advance(seconds: 2)
        table.expireDue()
        XCTAssertEqual(journal.entries, [
            .granted("x", leased.key, token: 101, lease: leaseEnd),
            .granted("y", forced.key, token: 102, lease: nil),
            .released("y", forced.key),
            .released("x", leased.key),
        ])
    }

    func testKeptHoldsOfAnEndedSessionAreNotReleasedOnRecord() throws {
        table.journal = journal
        let a = table.openSession()
        _ = try table.tryLock(name: "x", session: a)
        table.closeSession(a, releasingLocks: false)
        XCTAssertEqual(journal.entries.count, 1)
    }

    func testARestoredHoldKeepsItsKeyTokenAndSizeAndBlocksOthersUntilItsLeaseEnds() throws {
        let restored = LockGrant(key: LockKey(high: 0x4000, low: 0x8000_0000_0000_0001), fencingToken: 77)
        try table.restoreHold(name: "x", size: 2, grant: restored, leaseDeadline: clock.deadline(afterSeconds: 30))
        let a = table.openSession()
        XCTAssertNotNil(try table.tryLock(name: "x", size: 2, session: a))
        XCTAssertNil(try table.tryLock(name: "x", size: 2, session: a), "the restored hold takes a slot")
        assertThrows(.lockSizeMismatch(name: "x", lockSize: 2, requestedSize: 1)) { () throws(LockFailure) in
            try table.tryLock(name: "x", session: a)
        }
        XCTAssertEqual(table.lockInfo(name: "x")?.holders.first?.fencingToken, 77)
        XCTAssertNil(table.lockInfo(name: "x")?.holders.first?.session)
        clock.advance(seconds: 31)
        table.expireDue()
        XCTAssertEqual(table.lockInfo(name: "x")?.holders.count, 1, "the restored hold ran out")
    }

    func testRenewingARestoredHoldMakesItTheRenewingSessionsSoItGoesWithThatSession() throws {
        let restored = LockGrant(key: LockKey(high: 0x4000, low: 0x8000_0000_0000_0001), fencingToken: 77)
        try table.restoreHold(name: "x", size: 1, grant: restored, leaseDeadline: clock.deadline(afterSeconds: 30))
        let a = table.openSession(), b = table.openSession()
        XCTAssertEqual(try table.renew(name: "x", key: restored.key.description, leaseSeconds: 60, session: a), 77)
        XCTAssertEqual(table.heldLockCount(session: a), 1)
        table.closeSession(a, releasingLocks: true)
        XCTAssertNotNil(try table.tryLock(name: "x", session: b), "the hold went with the session that renewed it")
    }

    func testRestoringMoreHoldsThanTheSizeIsRefused() throws {
        let deadline = clock.deadline(afterSeconds: 30)
        try table.restoreHold(name: "x", size: 1, grant: LockGrant(key: LockKey(high: 1, low: 1), fencingToken: 1), leaseDeadline: deadline)
        assertInvalidArgument { () throws(LockFailure) in
            try table.restoreHold(name: "x", size: 1, grant: LockGrant(key: LockKey(high: 2, low: 2), fencingToken: 2), leaseDeadline: deadline)
        }
        XCTAssertEqual(table.lockInfo(name: "x")?.holders.count, 1)
    }

    func testTheHighWaterMarkIsTheLastTokenHandedOut() throws {
        XCTAssertEqual(table.fencingTokenHighWater, 100)
        _ = try table.tryLock(name: "x", session: table.openSession())
        XCTAssertEqual(table.fencingTokenHighWater, 101)
    }
}
