import XCTest

@testable import LDLMCore

final class LockRecordTests: XCTestCase {
    func testNameBytesRoundTripAtEveryLength() {
        for name in ["a", String(repeating: "x", count: 15), String(repeating: "y", count: 16), "caf\u{E9}-\u{1F512}", String(repeating: "z", count: 4_096)] {
            let record = LockRecord.make(name: name, size: 1)
            XCTAssertEqual(record.name, name)
            var bytes = name
            XCTAssertTrue(bytes.withUTF8 { record.hasName($0) })
        }
    }

    func testNamesDifferingInLengthOrInOneByteAreDifferent() {
        let record = LockRecord.make(name: "job-1", size: 1)
        for other in ["job-2", "job-", "job-11", "Job-1"] {
            var bytes = other
            XCTAssertFalse(bytes.withUTF8 { record.hasName($0) }, other)
        }
    }

    func testHoldersKeepTheirOrderThroughRemovalsAnywhere() {
        let record = LockRecord.make(name: "shared", size: 6)
        for token in UInt64(1)...6 {
            record.appendHolder(holder(token))
        }
        XCTAssertFalse(record.hasFreeSlot)
        record.removeHolder(at: 3)
        record.removeHolder(at: 0)
        XCTAssertEqual(record.holders.map(\.fencingToken), [2, 3, 5, 6])
        XCTAssertEqual(record.holderIndex(for: holder(5).key), 2)
        XCTAssertNil(record.holderIndex(for: holder(4).key))
        record.appendHolder(holder(7))
        XCTAssertEqual(record.holders.map(\.fencingToken), [2, 3, 5, 6, 7])
        while record.hasHolders {
            record.removeHolder(at: record.holderCount - 1)
        }
        XCTAssertTrue(record.isIdle, "no holder and no queue leaves nothing allocated beside the record")
    }

    func testARecordIsFreedWithItsLaterHoldersAndEmptiedQueue() {
        weak var released: LockRecord?
        weak var waiterLeft: WaiterRecord?
        do {
            let record = LockRecord.make(name: String(repeating: "n", count: 40), size: 2)
            record.appendHolder(holder(1))
            record.appendHolder(holder(2))
            let waiter = WaiterRecord(ticket: WaitTicket(rawValue: 1), session: SessionID(rawValue: 1), leaseSeconds: 0, waitDeadline: nil) { _ in }
            record.enqueue(waiter)
            XCTAssertEqual(record.waiterCount, 1)
            record.remove(waiter)
            released = record
            waiterLeft = waiter
        }
        XCTAssertNil(released)
        XCTAssertNil(waiterLeft)
    }

    func testASessionListsHoldsAndRemovalInTheMiddleMovesTheLastIntoTheGap() {
        let session = SessionRecord(id: SessionID(rawValue: 9))
        let records = (0..<4).map { LockRecord.make(name: "lock-\($0)", size: 2) }
        // Two holds of the same session on one record: each has its own slot.
        for (token, record) in zip(UInt64(1)..., records + [records[1]]) {
            let slot = session.addHolding(of: record)
            record.appendHolder(holder(token, session: session.id, slot: slot))
        }
        XCTAssertEqual(session.holdings.count, 5)

        // Drop the hold at slot 1 (token 2, the first on records[1]); the second
        // hold on records[1], at the last slot, moves into slot 1.
        let removed = records[1].removeHolder(at: 0)
        session.removeHolding(at: removed.sessionSlot)
        XCTAssertEqual(session.holdings.count, 4)
        XCTAssertTrue(session.holdings[1] === records[1])
        XCTAssertEqual(records[1][holder: 0].fencingToken, 5)
        XCTAssertEqual(records[1][holder: 0].sessionSlot, 1)

        // A freed slot is taken again by the next hold.
        let reused = session.addHolding(of: records[3])
        XCTAssertEqual(reused, 4)

        // Removing the last entry moves nothing.
        session.removeHolding(at: reused)
        for (slot, record) in zip(Int32(0)..., session.holdings) {
            XCTAssertNotNil(record.holderIndex(session: session.id, slot: slot), "slot \(slot)")
        }
        XCTAssertEqual(session.holdings.map { $0.name }, ["lock-0", "lock-1", "lock-2", "lock-3"])
    }

    private func holder(_ token: UInt64, session: SessionID? = nil, slot: Int32 = 0) -> Holder {
        Holder(LockGrant(key: LockKey(high: token, low: ~token), fencingToken: token), session: session, sessionSlot: slot, leaseDeadline: nil)
    }
}
