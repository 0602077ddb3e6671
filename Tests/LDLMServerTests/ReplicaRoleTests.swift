import LDLMCore
import LDLMReplication
import Logging
import NIOCore
import XCTest

@testable import LDLMServer

/// A replica's lock manager as it becomes primary and steps down.
final class ReplicaRoleTests: XCTestCase {
    /// Records changes and never commits them, as etcd would not while a
    /// replica is being deposed.
    private final class UncommittedJournal: DurableJournal {
        var granted: [(name: String, key: LockKey)] = []
        var hasUnsyncedChanges: Bool { !granted.isEmpty }
        func afterSync(_ body: @escaping () -> Void) {}
        func attached(to table: LockTable) {}
        func close() -> EventLoopFuture<Void> { fatalError("not used") }
        func holdGranted(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64?) { granted.append((name, grant.key)) }
        func holdReleased(name: String, key: LockKey) {}
        func leaseChanged(name: String, size: Int32, grant: LockGrant, leaseDeadline: UInt64) {}
    }

    private let server = EmbeddedServer()
    private var manager: LockManager { server.manager }
    private let connection = ConnectionContext(logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }), remoteAddress: nil)

    private func key(_ low: UInt64) -> LockKey { LockKey(high: 0x4000, low: 0x8000_0000_0000_0000 | low) }

    func testSteppingDownWithdrawsAQueuedLockInsteadOfGrantingItUnrecorded() throws {
        manager.startAsStandby()
        let journal = UncommittedJournal()
        try manager.becomePrimary(holds: [], fencingTokenFloor: 0, reclaimGrace: .seconds(15), journal: journal)
        let holder = manager.openSession(for: connection, close: {})
        let waiter = manager.openSession(for: connection, close: {})
        XCTAssertNotNil(try manager.tryLock(LockArguments(name: "L"), session: holder))
        var outcome: WaitOutcome?
        _ = try manager.lock(LockArguments(name: "L"), session: waiter) { { outcome = $0 } }

        manager.stepDown()

        XCTAssertEqual(outcome, .withdrawn)
        XCTAssertEqual(journal.granted.map(\.name), ["L"], "only the holder's grant reached the journal")
        XCTAssertEqual(manager.lockCount, 0)
        XCTAssertEqual(manager.sessionCount, 0)
        XCTAssertEqual(manager.role, .standby(primary: nil))
        XCTAssertFalse(manager.isServing)
    }

    func testLoadedHoldsWaitForTheirHoldersThenGoWhenTheGraceEnds() throws {
        manager.startAsStandby()
        XCTAssertFalse(manager.isServing)
        let loaded = LoadedHold(name: "kept", key: key(1), value: HoldValue(size: 1, fencingToken: 900, leaseEndUnixMilliseconds: nil))
        try manager.becomePrimary(holds: [loaded], fencingTokenFloor: 1_000, reclaimGrace: .seconds(15), journal: UncommittedJournal())
        XCTAssertTrue(manager.isServing)
        let other = manager.openSession(for: connection, close: {})
        XCTAssertNil(try manager.tryLock(LockArguments(name: "kept"), session: other), "a loaded hold is kept for its holder")
        let fresh = try XCTUnwrap(manager.tryLock(LockArguments(name: "new"), session: other))
        XCTAssertGreaterThan(fresh.fencingToken, 1_000, "tokens continue above the floor")

        let reclaimer = manager.openSession(for: connection, close: {})
        XCTAssertEqual(try manager.renew(name: "kept", key: key(1).description, leaseSeconds: 60, session: reclaimer), 900)
        server.loop.advanceTime(by: .seconds(16))
        XCTAssertNil(try manager.tryLock(LockArguments(name: "kept"), session: other), "a reclaimed hold outlives the grace")
    }

    func testAnUnreclaimedHoldIsReleasedWhenTheGraceEnds() throws {
        manager.startAsStandby()
        let loaded = LoadedHold(name: "orphan", key: key(2), value: HoldValue(size: 1, fencingToken: 5, leaseEndUnixMilliseconds: nil))
        try manager.becomePrimary(holds: [loaded], fencingTokenFloor: 5, reclaimGrace: .seconds(15), journal: UncommittedJournal())
        let other = manager.openSession(for: connection, close: {})
        server.loop.advanceTime(by: .seconds(14))
        XCTAssertNil(try manager.tryLock(LockArguments(name: "orphan"), session: other))
        server.loop.advanceTime(by: .seconds(2))
        XCTAssertNotNil(try manager.tryLock(LockArguments(name: "orphan"), session: other))
    }

    func testALoadedHoldWhoseLeaseEndsBeforeTheGraceGoesWhenItsLeaseEnds() throws {
        manager.startAsStandby()
        let leased = LoadedHold(
            name: "short", key: key(4),
            value: HoldValue(size: 1, fencingToken: 5, leaseEndUnixMilliseconds: EmbeddedServer.wallClockNow + 3_000)
        )
        let lapsed = LoadedHold(
            name: "lapsed", key: key(5),
            value: HoldValue(size: 1, fencingToken: 6, leaseEndUnixMilliseconds: EmbeddedServer.wallClockNow - 1_000)
        )
        try manager.becomePrimary(holds: [leased, lapsed], fencingTokenFloor: 6, reclaimGrace: .seconds(15), journal: UncommittedJournal())
        let other = manager.openSession(for: connection, close: {})
        server.loop.advanceTime(by: .milliseconds(1))
        XCTAssertNotNil(try manager.tryLock(LockArguments(name: "lapsed"), session: other), "a lease that had ended is not kept")
        XCTAssertNil(try manager.tryLock(LockArguments(name: "short"), session: other))
        server.loop.advanceTime(by: .seconds(3))
        XCTAssertNotNil(try manager.tryLock(LockArguments(name: "short"), session: other), "released when its own lease ends")
    }

    func testATakeoverThatCannotLoadItsHoldsLeavesNothingBehind() {
        manager.startAsStandby()
        let twice = LoadedHold(name: "dup", key: key(3), value: HoldValue(size: 1, fencingToken: 5, leaseEndUnixMilliseconds: nil))
        XCTAssertThrowsError(try manager.becomePrimary(
            holds: [twice, twice], fencingTokenFloor: 5, reclaimGrace: .seconds(15), journal: UncommittedJournal()
        ))
        XCTAssertEqual(manager.lockCount, 0)
        XCTAssertFalse(manager.isServing)
    }
}
