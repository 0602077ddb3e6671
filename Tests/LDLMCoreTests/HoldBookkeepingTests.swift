@testable import LDLMCore
import XCTest

/// Review of 4ffb625 (records as ManagedBuffers, session hold arrays with
/// swap-remove, lease entries naming only the record): the cases where each
/// of those could lose track of a hold.
final class HoldBookkeepingTests: LockTableTestCase {
    // MARK: Session slots

    /// Swap-remove must tell the moved hold its new slot also when that hold
    /// is a later holder (in the overflow object) of a lock the session holds
    /// more than once, and when the moved hold was adopted by renewing.
    func testSlotsStayRightWhenTheMovedHoldIsALaterHolderOfALockHeldTwice() throws {
        let s = table.openSession(), other = table.openSession()
        let a = try acquire(name: "a", session: s)                    // slot 0
        _ = try acquire(name: "shared", size: 4, session: other)      // first holder: other's
        let shared1 = try acquire(name: "shared", size: 4, session: s) // slot 1, later holder 1
        let shared2 = try acquire(name: "shared", size: 4, session: s) // slot 2, later holder 2
        let b = try acquire(name: "b", session: s)                    // slot 3
        // slot 0 freed: slot 3 ("b") moves there.
        try table.unlock(name: "a", key: a.description)
        // slot 1 freed: the last slot (shared2, a later holder of the same lock) moves there.
        try table.unlock(name: "shared", key: shared1.description)
        XCTAssertEqual(table.heldLockCount(session: s), 2)
        // Releasing by key what moved must find it at its new slot.
        try table.unlock(name: "b", key: b.description)
        XCTAssertEqual(table.heldLockCount(session: s), 1)
        try table.unlock(name: "shared", key: shared2.description)
        XCTAssertEqual(table.heldLockCount(session: s), 0)
        XCTAssertEqual(table.lockInfo(name: "shared")?.holders.count, 1)
        XCTAssertEqual(table.holderCount, 1)
        table.closeSession(s, releasingLocks: true)
        XCTAssertEqual(table.lockCount, 1)
        table.closeSession(other, releasingLocks: true)
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.holderCount, 0)
    }

    func testAnAdoptedHoldThatMovesSlotsStillGoesWithItsNewSession() throws {
        let first = table.openSession()
        let kept = try acquire(name: "kept", size: 2, session: first)
        table.closeSession(first, releasingLocks: false)
        let adopting = table.openSession()
        let own1 = try acquire(name: "own1", session: adopting)                 // slot 0
        _ = try acquire(name: "kept", size: 2, session: adopting)               // slot 1
        try table.renew(name: "kept", key: kept.description, leaseSeconds: 60, session: adopting) // slot 2
        XCTAssertEqual(table.heldLockCount(session: adopting), 3)
        try table.unlock(name: "own1", key: own1.description)                  // slot 2 moves to 0
        XCTAssertEqual(table.heldLockCount(session: adopting), 2)
        XCTAssertEqual(table.lockInfo(name: "kept")?.holders.map(\.session), [adopting, adopting])

        // Its lease expires: the hold leaves the session at its moved slot.
        clock.advance(seconds: 60)
        table.expireDue()
        XCTAssertEqual(table.heldLockCount(session: adopting), 1)
        XCTAssertEqual(table.lockInfo(name: "kept")?.holders.count, 1)
        table.closeSession(adopting, releasingLocks: true)
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.holderCount, 0)
    }

    /// Random adds and removals straight on records and a session list, with
    /// several holds of one session per record (inline and overflow), checked
    /// against the two-way invariant after every step.
    func testSwapRemoveKeepsEverySlotTwoWayConsistent() {
        var rng = SeededGenerator(seed: 0x5107)
        let sessions = (1...3).map { SessionRecord(id: SessionID(rawValue: UInt64($0))) }
        let records = (0..<5).map { LockRecord.make(name: "r\($0)", size: 6) }
        var token: UInt64 = 0
        for step in 0..<5_000 {
            let record = rng.pick(records)
            if record.hasFreeSlot, rng.percent(55) {
                token += 1
                if rng.percent(10) {
                    // A hold no session owns (kept past its session or restored).
                    record.appendHolder(Holder(LockGrant(key: LockKey(high: token, low: token), fencingToken: token), session: nil, sessionSlot: 0, leaseDeadline: nil))
                } else {
                    let session = rng.pick(sessions)
                    let slot = session.addHolding(of: record)
                    record.appendHolder(Holder(LockGrant(key: LockKey(high: token, low: token), fencingToken: token), session: session.id, sessionSlot: slot, leaseDeadline: nil))
                }
            } else if record.hasHolders {
                let removed = record.removeHolder(at: rng.below(record.holderCount))
                if let id = removed.session {
                    sessions[Int(id.rawValue) - 1].removeHolding(at: removed.sessionSlot)
                }
            }
            var listed = 0
            for session in sessions {
                for (slot, held) in zip(Int32(0)..., session.holdings) {
                    XCTAssertNotNil(held.holderIndex(session: session.id, slot: slot), "step \(step): \(session.id) slot \(slot)")
                }
                listed += session.holdings.count
            }
            var owned = 0
            for record in records {
                for holder in record.holders {
                    XCTAssertFalse(holder.isVacant)
                    guard let id = holder.session else { continue }
                    owned += 1
                    let session = sessions[Int(id.rawValue) - 1]
                    XCTAssertTrue(session.holdings[Int(holder.sessionSlot)] === record, "step \(step)")
                }
            }
            XCTAssertEqual(listed, owned, "step \(step)")
            if listed != owned { return }
        }
    }

    // MARK: Lease entries naming only the record

    /// A stale entry of a released hold at D must not expire the record's
    /// next holder, whose lease ends later; nor one that renewed past D after
    /// being armed at D itself.
    func testAnOldEntryDoesNotExpireTheNextHolderEarly() throws {
        let s = table.openSession()
        let old = try acquire(leaseSeconds: 5, session: s)   // entry at t+5
        clock.advance(seconds: 1)
        try table.unlock(name: "L", key: old.description)
        let later = try acquire(leaseSeconds: 10, session: s) // t+11, same session
        clock.advance(seconds: 4)
        table.expireDue()                                      // t+5: old entry fires
        XCTAssertEqual(holderKeys(), [later])
        try table.unlock(name: "L", key: later.description)

        // Armed at the very deadline of a released hold, then extended.
        let start = clock.nanosecondsNow
        let first = try acquire(leaseSeconds: 4, session: s)   // start+4
        clock.advance(seconds: 1)
        try table.unlock(name: "L", key: first.description)
        let second = try acquire(leaseSeconds: 3, session: s)  // start+4, the same deadline
        try table.renew(name: "L", key: second.description, leaseSeconds: 9) // start+10
        clock.advance(seconds: 3)
        table.expireDue()                                      // start+4: two entries fire
        XCTAssertEqual(holderKeys(), [second])
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.first?.leaseDeadline, start + 10_000_000_000)
        clock.advance(nanoseconds: 6_000_000_000 - 1)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [second])
        clock.advance(nanoseconds: 1)
        table.expireDue()
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertEqual(table.heldLockCount(session: s), 0)
        XCTAssertEqual(table.holderCount, 0)
    }

    /// Several holders of one sized lock with different leases, renewals that
    /// extend and shorten, and waiters taking the freed slots in order: each
    /// hold goes exactly at its own deadline.
    func testHoldsOfASizedLockExpireEachAtItsOwnDeadline() throws {
        let s = table.openSession(), t = table.openSession()
        let start = clock.nanosecondsNow
        func at(_ seconds: UInt64) -> UInt64 { start + seconds * 1_000_000_000 }
        let h3 = try acquire(size: 4, leaseSeconds: 3, session: s)
        let h5 = try acquire(size: 4, leaseSeconds: 5, session: t)
        let hNone = try acquire(size: 4, session: s)
        let h5b = try acquire(size: 4, leaseSeconds: 5, session: s)
        try enqueue("w1", size: 4, leaseSeconds: 2, session: t)
        try enqueue("w2", size: 4, leaseSeconds: 2, session: s)
        try table.renew(name: "L", key: h5.description, leaseSeconds: 7)  // t+7, armed at 5
        try table.renew(name: "L", key: h3.description, leaseSeconds: 1)  // t+1, armed at 1

        clock.advance(seconds: 1)
        table.expireDue()                                                   // h3 goes, w1 at t+3
        let w1 = try XCTUnwrap(log.grantedKey("w1"))
        XCTAssertEqual(holderKeys(), [h5, hNone, h5b, w1])
        clock.advance(seconds: 2)
        table.expireDue()                                                   // w1 goes (t+3), w2 at t+5
        let w2 = try XCTUnwrap(log.grantedKey("w2"))
        XCTAssertEqual(holderKeys(), [h5, hNone, h5b, w2])
        clock.advance(seconds: 2)
        table.expireDue()                                                   // t+5: h5b and w2; h5 re-arms
        XCTAssertEqual(holderKeys(), [h5, hNone])
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.first { $0.key == h5 }?.leaseDeadline, at(7))
        clock.advance(seconds: 2)
        table.expireDue()
        XCTAssertEqual(holderKeys(), [hNone])
        XCTAssertEqual(table.heldLockCount(session: s), 1)
        XCTAssertEqual(table.heldLockCount(session: t), 0)
        XCTAssertEqual(table.holderCount, 1)
        XCTAssertNil(table.nextDeadline)
    }

    /// Holds put back with no session (state file, or HA's becomePrimary),
    /// all at the same deadline: one adopted and extended stays, the rest go,
    /// each once.
    func testRestoredHoldsAtOneDeadlineExpireOnceEachAndAnAdoptedOneStays() throws {
        let deadline = clock.deadline(afterSeconds: 30)
        let keys = (0..<3).map { _ in unheldKey() }
        for (token, key) in zip(UInt64(1)..., keys) {
            try table.restoreHold(name: "L", size: 3, grant: LockGrant(key: key, fencingToken: token), leaseDeadline: deadline)
        }
        let s = table.openSession()
        let own = try acquire(name: "own", session: s)
        try table.renew(name: "L", key: keys[1].description, leaseSeconds: 60, session: s)
        XCTAssertEqual(table.heldLockCount(session: s), 2)
        try table.unlock(name: "own", key: own.description) // the adopted hold moves to slot 0
        try enqueue("w", size: 3, session: table.openSession())

        clock.advance(seconds: 30)
        table.expireDue()
        let w = try XCTUnwrap(log.grantedKey("w"))
        XCTAssertEqual(holderKeys(), [keys[1], w])
        XCTAssertEqual(table.leaseExpiryCount, 2)
        XCTAssertEqual(table.heldLockCount(session: s), 1)
        table.closeSession(s, releasingLocks: true)
        XCTAssertEqual(holderKeys(), [w])
        XCTAssertEqual(table.holderCount, 1)
    }

    /// Stale entries must not pile up (DeadlineQueue's promise): a slot of a
    /// sized lock taken and released many times while the other slot's hold
    /// is armed at the same deadline. With entries naming only the record, an
    /// entry at (D, record) is not recognisably stale while any hold of the
    /// record is armed at D, so a clock that does not move between calls
    /// keeps every churned entry. (EventLoopClock reads nanoseconds, so in the
    /// server this needs two grants in one nanosecond.)
    func testChurningOneSlotBesideAHoldArmedAtTheSameDeadlineKeepsTheQueueBounded() throws {
        let s = table.openSession()
        _ = try acquire(size: 2, leaseSeconds: 30, session: s)
        for _ in 0..<10_000 {
            let key = try acquire(size: 2, leaseSeconds: 30, session: s)
            try table.unlock(name: "L", key: key.description)
        }
        XCTAssertLessThanOrEqual(table.leaseEntryCount, 2_048)
    }

    // MARK: Records

    func testLaterHoldersAndTheirObjectAreFreedWithTheRecord() {
        weak var overflow: LockOverflow?
        weak var record: LockRecord?
        do {
            let made = LockRecord.make(name: "shared", size: 3)
            for token in UInt64(1)...3 {
                made.appendHolder(Holder(LockGrant(key: LockKey(high: token, low: token), fencingToken: token), session: nil, sessionSlot: 0, leaseDeadline: nil))
            }
            overflow = made.header.overflow
            record = made
            XCTAssertNotNil(overflow)
        }
        XCTAssertNil(record)
        XCTAssertNil(overflow, "the header (and the overflow it references) is destroyed with the record")
    }

    /// Names that differ only after a NUL byte, only in the last byte of a
    /// long name, or in Unicode normalisation are different locks; all are
    /// found again after the index grew and shrank around them.
    func testNamesAreComparedAsWholeByteStringsThroughIndexGrowth() throws {
        let s = table.openSession()
        let long = String(repeating: "x", count: 200)
        let names = ["a\u{0}b", "a\u{0}c", "a", long + "1", long + "2", "caf\u{E9}", "cafe\u{301}", "\u{1F512}-32-bytes-of-name-exactly-"]
        // Not a [String: LockKey]: Swift's String equality merges "caf\u{E9}" and "cafe\u{301}".
        var keys: [LockKey] = []
        for name in names {
            keys.append(try acquire(name: name, session: s))
        }
        var fillers: [(String, LockKey)] = []
        for index in 0..<300 {
            fillers.append(("filler-\(index)", try acquire(name: "filler-\(index)", session: s)))
        }
        for (name, key) in fillers where name.hasSuffix("7") || name.hasSuffix("3") {
            try table.unlock(name: name, key: key.description)
        }
        XCTAssertEqual(table.lockCount, names.count + 300 - 60)
        for (name, key) in zip(names, keys) {
            XCTAssertEqual(holderKeys(name), [key], name.debugDescription)
            XCTAssertEqual(table.lockInfo(name: name)?.name.utf8.elementsEqual(name.utf8), true)
        }
        XCTAssertEqual(Set(table.allLocks.map { Array($0.name.utf8) }).count, table.lockCount)
        table.closeSession(s, releasingLocks: true)
        XCTAssertEqual(table.lockCount, 0)
    }
}
