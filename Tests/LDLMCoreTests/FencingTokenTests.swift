import LDLMCore
import XCTest

final class FencingTokenTests: LockTableTestCase {
    func testTokensStartAboveTheWallClockAndRiseOverUnlockAndRelock() throws {
        let session = table.openSession()
        var tokens: [UInt64] = []
        for _ in 0..<4 {
            let grant = try acquireGrant(session: session)
            tokens.append(grant.fencingToken)
            try table.unlock(name: "L", key: grant.key.description)
        }
        XCTAssertGreaterThan(tokens[0], Self.startMicroseconds)
        assertStrictlyIncreasing(tokens)
    }

    func testEachHolderOfASizedLockGetsALargerToken() throws {
        let tokens = try (0..<3).map { _ in try acquireGrant(size: 3, session: table.openSession()).fencingToken }
        assertStrictlyIncreasing(tokens)
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.fencingToken), tokens)
    }

    func testLockGrantedAtOnceCarriesTheNextToken() throws {
        let session = table.openSession()
        let first = try acquireGrant(session: session)
        try table.unlock(name: "L", key: first.key.description)
        let attempt = try table.lock(name: "L", session: session) { log.makeHandler("unused") }
        guard case .acquired(let grant) = attempt else { return XCTFail("expected to acquire, got \(attempt)") }
        XCTAssertGreaterThan(grant.fencingToken, first.fencingToken)
    }

    func testTokensRisePerNameWhileOtherNamesTakeTokensInBetween() throws {
        let session = table.openSession()
        var tokens: [String: [UInt64]] = [:]
        for name in ["A", "B", "A", "C", "B", "A"] {
            let grant = try acquireGrant(name: name, session: session)
            tokens[name, default: []].append(grant.fencingToken)
            try table.unlock(name: name, key: grant.key.description)
        }
        for (name, sequence) in tokens {
            assertStrictlyIncreasing(sequence, "\(name)")
        }
    }

    // MARK: Grants to waiters

    func testWaiterGrantedOnUnlockGetsALargerToken() throws {
        let holder = try acquireGrant(session: table.openSession())
        try enqueue("waiter", session: table.openSession())
        try table.unlock(name: "L", key: holder.key.description)
        try assertGrantFollows(holder, "waiter")
    }

    func testWaiterGrantedOnLeaseExpiryGetsALargerToken() throws {
        let holder = try acquireGrant(leaseSeconds: 1, session: table.openSession())
        try enqueue("waiter", session: table.openSession())
        clock.advance(seconds: 1)
        table.expireDue()
        try assertGrantFollows(holder, "waiter")
    }

    func testWaiterGrantedOnDisconnectGetsALargerToken() throws {
        let session = table.openSession()
        let holder = try acquireGrant(session: session)
        try enqueue("waiter", session: table.openSession())
        table.closeSession(session, releasingLocks: true)
        try assertGrantFollows(holder, "waiter")
    }

    func testWaitersGrantedTogetherGetTokensInQueueOrder() throws {
        let session = table.openSession()
        let holders = try (0..<2).map { _ in try acquireGrant(size: 2, session: session) }
        try enqueue("first", size: 2, session: table.openSession())
        try enqueue("second", size: 2, session: table.openSession())
        table.closeSession(session, releasingLocks: true)
        let granted = try ["first", "second"].map { try XCTUnwrap(log.grant($0)).fencingToken }
        assertStrictlyIncreasing(holders.map(\.fencingToken) + granted)
    }

    // MARK: Renewing

    func testRenewReturnsTheTokenOfTheAcquisition() throws {
        let grant = try acquireGrant(leaseSeconds: 5, session: table.openSession())
        _ = try acquireGrant(name: "other", session: table.openSession())
        XCTAssertEqual(try table.renew(name: "L", key: grant.key.description, leaseSeconds: 10), grant.fencingToken)
        clock.advance(seconds: 3)
        XCTAssertEqual(try table.renew(name: "L", key: grant.key.description, leaseSeconds: 10), grant.fencingToken)
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.fencingToken), [grant.fencingToken])
    }

    // MARK: Restarts

    func testRestartAtALaterWallClockGivesLargerTokens() throws {
        let issued = try takeAndReleaseTokens(count: 1_000)
        // The run handed out one token per microsecond: the most the design allows.
        let restarted = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: Self.startMicroseconds + 1_000))
        let session = restarted.openSession()
        let after = try XCTUnwrap(try restarted.tryLock(name: "L0", session: session))
        XCTAssertGreaterThan(after.fencingToken, try XCTUnwrap(issued.max()))
    }

    func testTokensKeepRisingWhenGrantsOutrunTheWallClock() throws {
        // Far more grants than microseconds passed: the counter leaves the wall
        // clock behind and must not fall back to it.
        let tokens = try takeAndReleaseTokens(count: 5_000)
        assertStrictlyIncreasing(tokens)
        XCTAssertGreaterThan(try XCTUnwrap(tokens.last), Self.startMicroseconds + 4_999)
    }

    func testAStartAboveAKnownHighWaterMarkSurvivesAWallClockThatWentBack() throws {
        let issued = try takeAndReleaseTokens(count: 10)
        let highWaterMark = try XCTUnwrap(issued.max())
        let wallClockAfterAStepBack = Self.startMicroseconds - 60_000_000
        let restarted = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: max(highWaterMark, wallClockAfterAStepBack)))
        let after = try XCTUnwrap(try restarted.tryLock(name: "L0", session: restarted.openSession()))
        XCTAssertEqual(after.fencingToken, highWaterMark + 1)
    }

    // MARK: Helpers

    private func takeAndReleaseTokens(count: Int) throws -> [UInt64] {
        let session = table.openSession()
        return try (0..<count).map { index in
            let grant = try acquireGrant(name: "L\(index % 3)", session: session)
            try table.unlock(name: "L\(index % 3)", key: grant.key.description)
            return grant.fencingToken
        }
    }

    private func assertGrantFollows(_ holder: LockGrant, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let grant = try XCTUnwrap(log.grant(label, file: file, line: line), file: file, line: line)
        XCTAssertGreaterThan(grant.fencingToken, holder.fencingToken, file: file, line: line)
        XCTAssertEqual(table.lockInfo(name: "L")?.holders.map(\.fencingToken), [grant.fencingToken], file: file, line: line)
    }

    private func assertStrictlyIncreasing(_ tokens: [UInt64], _ what: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(zip(tokens, tokens.dropFirst()).allSatisfy { $0 < $1 }, "\(what) tokens \(tokens)", file: file, line: line)
    }
}
