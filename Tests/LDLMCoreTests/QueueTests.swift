import LDLMCore
import XCTest

final class QueueTests: LockTableTestCase {
    func testEachUnlockGrantsTheNextWaiterInArrivalOrder() throws {
        let owner = table.openSession()
        var key = try acquire(session: owner)
        let labels = ["w1", "w2", "w3", "w4"]
        for label in labels {
            try enqueue(label, session: table.openSession())
        }
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 4)

        for (index, label) in labels.enumerated() {
            try table.unlock(name: "L", key: key.description)

            XCTAssertEqual(log.labels, Array(labels[...index]), "one new grant per unlock, in order")
            key = try XCTUnwrap(log.grantedKey(label))
            XCTAssertEqual(holderKeys(), [key])
            XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, labels.count - index - 1)
        }

        try table.unlock(name: "L", key: key.description)
        XCTAssertEqual(log.calls.count, labels.count, "each handler is called exactly once")
        XCTAssertEqual(table.lockCount, 0)
    }

    func testQueuedHandlerIsNotCalledWhileTheLockStaysHeld() throws {
        let owner = table.openSession()
        _ = try acquire(session: owner)
        try enqueue("waiter", session: table.openSession())

        _ = try table.tryLock(name: "L", session: table.openSession())
        _ = try table.tryLock(name: "other", session: owner)
        clock.advance(seconds: 3600)
        table.expireDue()

        XCTAssertTrue(log.calls.isEmpty)
    }

    func testGrantedWaiterOwnsTheLockThroughItsSession() throws {
        let owner = table.openSession()
        let waiterSession = table.openSession()
        let key = try acquire(session: owner)
        try enqueue("waiter", session: waiterSession)

        try table.unlock(name: "L", key: key.description)

        let granted = try XCTUnwrap(log.grantedKey("waiter"))
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.session), [waiterSession])
        XCTAssertEqual(table.heldLockCount(session: waiterSession), 1)
        XCTAssertEqual(table.heldLockCount(session: owner), 0)
        try table.unlock(name: "L", key: granted.description)
        XCTAssertEqual(table.lockCount, 0)
    }

    func testSameSessionQueuesBehindItself() throws {
        let session = table.openSession()
        let key = try acquire(session: session)

        try enqueue("again", session: session)
        try table.unlock(name: "L", key: key.description)

        XCTAssertNotNil(log.grantedKey("again"))
    }

    // MARK: cancelWait

    func testCancelledWaiterIsNeverCalled() throws {
        let owner = table.openSession()
        let key = try acquire(session: owner)
        let ticket = try enqueue("cancelled", waitTimeoutSeconds: 5, session: table.openSession())

        XCTAssertTrue(table.cancelWait(ticket))
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 0)

        clock.advance(seconds: 10)
        table.expireDue()
        try table.unlock(name: "L", key: key.description)

        XCTAssertTrue(log.calls.isEmpty)
        XCTAssertEqual(table.lockCount, 0)
    }

    func testCancelWaitReturnsFalseOnceTheWaitEnded() throws {
        let owner = table.openSession()
        let key = try acquire(session: owner)
        let granted = try enqueue("granted", session: table.openSession())
        let timedOut = try enqueue("timedOut", waitTimeoutSeconds: 1, session: table.openSession())

        clock.advance(seconds: 1)
        table.expireDue()
        try table.unlock(name: "L", key: key.description)

        XCTAssertFalse(table.cancelWait(granted))
        XCTAssertFalse(table.cancelWait(timedOut))
        // The grant stands: cancelling too late does not undo it.
        XCTAssertEqual(holderKeys(), [try XCTUnwrap(log.grantedKey("granted"))])
        XCTAssertEqual(log.outcomes(of: "timedOut"), [.timedOut])
    }

    func testCancelWaitTwiceReturnsFalseTheSecondTime() throws {
        _ = try acquire(session: table.openSession())
        let ticket = try enqueue("waiter", session: table.openSession())

        XCTAssertTrue(table.cancelWait(ticket))
        XCTAssertFalse(table.cancelWait(ticket))
    }

    func testCancellingTheHeadWaiterPassesTheNextReleaseOn() throws {
        let key = try acquire(session: table.openSession())
        let head = try enqueue("head", session: table.openSession())
        try enqueue("second", session: table.openSession())
        try enqueue("third", session: table.openSession())

        XCTAssertTrue(table.cancelWait(head))
        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(log.labels, ["second"])
        XCTAssertEqual(table.lockInfo(name: "L")?.waiterCount, 1)
    }

    func testCancellingAMiddleWaiterKeepsTheOthersInOrder() throws {
        var key = try acquire(session: table.openSession())
        try enqueue("first", session: table.openSession())
        let middle = try enqueue("middle", session: table.openSession())
        try enqueue("last", session: table.openSession())

        XCTAssertTrue(table.cancelWait(middle))
        try table.unlock(name: "L", key: key.description)
        key = try XCTUnwrap(log.grantedKey("first"))
        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(log.labels, ["first", "last"])
    }

    func testCancellingTheLastWaiterThenUnlockingRemovesTheLock() throws {
        let key = try acquire(session: table.openSession())
        let ticket = try enqueue("waiter", session: table.openSession())

        table.cancelWait(ticket)
        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(table.lockCount, 0)
        XCTAssertTrue(log.calls.isEmpty)
    }

    // MARK: Re-entrant handlers

    /// The server's undeliverable-grant path: the handler finds its caller gone
    /// and unlocks the key it was just handed, from inside the handler.
    func testHandlerThatUnlocksItsGrantPassesTheLockOn() throws {
        let owner = table.openSession()
        let key = try acquire(session: owner)
        var unlockError: LockFailure?
        _ = try table.lock(name: "L", session: table.openSession()) {
            { [unowned self] outcome in
                log.handler("gone")(outcome)
                guard case .granted(let granted) = outcome else { return }
                do throws(LockFailure) {
                    try table.unlock(name: "L", key: granted.key.description)
                } catch {
                    unlockError = error
                }
            }
        }
        try enqueue("next", session: table.openSession())

        try table.unlock(name: "L", key: key.description)

        XCTAssertNil(unlockError)
        XCTAssertEqual(log.labels, ["gone", "next"])
        let next = try XCTUnwrap(log.grantedKey("next"))
        let info = try XCTUnwrap(table.lockInfo(name: "L"))
        XCTAssertEqual(info.holders.map(\.key), [next])
        XCTAssertEqual(info.waiterCount, 0)
    }

    func testChainOfUndeliverableGrantsLeavesTheLockIdle() throws {
        let key = try acquire(session: table.openSession())
        var failures: [LockFailure] = []
        for index in 0..<5 {
            _ = try table.lock(name: "L", session: table.openSession()) {
                { [unowned self] outcome in
                    log.handler("gone-\(index)")(outcome)
                    guard case .granted(let granted) = outcome else { return }
                    do throws(LockFailure) {
                        try table.unlock(name: "L", key: granted.key.description)
                    } catch {
                        failures.append(error)
                    }
                }
            }
        }

        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(failures, [])
        XCTAssertEqual(log.labels, (0..<5).map { "gone-\($0)" })
        XCTAssertEqual(table.lockCount, 0)
        XCTAssertNil(table.nextDeadline)
    }

    func testHandlerMaySeeItsOwnGrantInTheTable() throws {
        let key = try acquire(session: table.openSession())
        let waiterSession = table.openSession()
        var seenHolders: [LockKey] = []
        var seenWaiters: Int?
        _ = try table.lock(name: "L", session: waiterSession) {
            { [unowned self] outcome in
                guard case .granted = outcome else { return }
                seenHolders = table.lockInfo(name: "L")?.holders.map(\.key) ?? []
                seenWaiters = table.lockInfo(name: "L")?.waiterCount
            }
        }
        try enqueue("behind", session: table.openSession())

        try table.unlock(name: "L", key: key.description)

        XCTAssertEqual(seenHolders, Array(holderKeys()))
        XCTAssertEqual(seenWaiters, 1)
    }

    func testHandlerThatUnlocksAGrantFromALeaseExpiryPassesTheLockOn() throws {
        _ = try acquire(leaseSeconds: 2, session: table.openSession())
        _ = try table.lock(name: "L", session: table.openSession()) {
            { [unowned self] outcome in
                log.handler("gone")(outcome)
                if case .granted(let granted) = outcome {
                    try? table.unlock(name: "L", key: granted.key.description)
                }
            }
        }
        try enqueue("next", session: table.openSession())

        clock.advance(seconds: 2)
        table.expireDue()

        XCTAssertEqual(log.labels, ["gone", "next"])
        XCTAssertEqual(holderKeys(), [try XCTUnwrap(log.grantedKey("next"))])
    }

    func testHandlerThatUnlocksAGrantFromASessionCloseFreesTheSlot() throws {
        let closing = table.openSession()
        _ = try acquire(session: closing)
        _ = try table.lock(name: "L", session: table.openSession()) {
            { [unowned self] outcome in
                log.handler("gone")(outcome)
                if case .granted(let granted) = outcome {
                    try? table.unlock(name: "L", key: granted.key.description)
                }
            }
        }

        table.closeSession(closing, releasingLocks: true)

        XCTAssertEqual(log.labels, ["gone"])
        XCTAssertEqual(table.lockCount, 0)
    }
}
