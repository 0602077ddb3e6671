import LDLMClient
import XCTest

/// Every call of the API on one shared server; each test uses its own names.
final class LockTests: XCTestCase {
    static var server: ServerProcess!

    override class func setUp() {
        super.setUp()
        server = try! ServerProcess()
    }

    override class func tearDown() {
        server.stop()
        server = nil
        super.tearDown()
    }

    private var client: LDLMClient!
    private var other: LDLMClient!

    override func setUp() async throws {
        client = try makeClient([Self.server])
        other = try makeClient([Self.server])
    }

    override func tearDown() async throws {
        await client.close()
        await other.close()
    }

    func testLockGivesAHandleOthersCannotTakeUntilUnlock() async throws {
        let name = uniqueName()
        let handle = try await client.lock(name)
        XCTAssertEqual(handle.name, name)
        XCTAssertFalse(handle.key.isEmpty)
        XCTAssertEqual(handle.size, 1)
        XCTAssertNotNil(handle.fencingToken)
        XCTAssertNil(handle.lostReason)
        let refused = try await other.tryLock(name)
        XCTAssertNil(refused)

        try await client.unlock(handle)
        XCTAssertEqual(handle.lostReason, .released)
        let reason = try await handle.waitUntilLost()
        XCTAssertEqual(reason, .released)
        let taken = try await other.tryLock(name)
        XCTAssertGreaterThan(try XCTUnwrap(taken?.fencingToken), try XCTUnwrap(handle.fencingToken), "the next holder's token is larger")
    }

    func testTryLockTakesAFreeLockAndAnswersNilForAHeldOne() async throws {
        let name = uniqueName()
        let first = try await client.tryLock(name)
        XCTAssertEqual(first?.name, name)
        let second = try await client.tryLock(name)
        XCTAssertNil(second, "held, even by this same client")
        try await client.unlock(XCTUnwrap(first))
    }

    func testLockWaitsUntilTheHolderUnlocks() async throws {
        let name = uniqueName()
        let held = try await client.lock(name)
        let other = self.other!
        let waiter = Task { try await other.lock(name) }
        try await Task.sleep(for: .milliseconds(300))
        try await client.unlock(held)
        let granted = try await withTimeout(5) { try await waiter.value }
        XCTAssertNotEqual(granted.key, held.key)
        try await other.unlock(granted)
    }

    func testLockWaitTimeoutIsATypedError() async throws {
        let name = uniqueName()
        let held = try await client.lock(name)
        await assertThrows(try await other.lock(name, waitTimeout: .seconds(1))) {
            if case LDLMClientError.lockWaitTimeout = $0 { return true }
            return false
        }
        try await client.unlock(held)
    }

    func testSizedLockAdmitsSizeHoldersAndRejectsAnotherSize() async throws {
        let name = uniqueName()
        let first = try await client.lock(name, size: 2)
        let second = try await other.lock(name, size: 2)
        XCTAssertEqual(second.size, 2)
        let third = try await other.tryLock(name, size: 2)
        XCTAssertNil(third)
        await assertThrows(try await other.tryLock(name, size: 3)) {
            if case LDLMClientError.lockSizeMismatch = $0 { return true }
            return false
        }
        try await client.unlock(first)
        try await other.unlock(second)
    }

    func testServerErrorCodesBecomeTypedErrors() async throws {
        await assertThrows(try await client.lock(uniqueName(), size: 0)) {
            if case LDLMClientError.invalidLockSize = $0 { return true }
            return false
        }
        await assertThrows(try await client.tryLock("")) {
            if case LDLMClientError.unknown = $0 { return true }
            return false
        }
    }

    func testInvalidArgumentsAreRefusedBeforeSending() async throws {
        await assertThrows(try await client.lock(uniqueName(), lease: .zero)) {
            $0 as? LDLMClientError == .invalidArgument("a lease must be at least 1 s")
        }
        await assertThrows(try await client.lock(uniqueName(), waitTimeout: .seconds(-1))) {
            if case LDLMClientError.invalidArgument = $0 { return true }
            return false
        }
    }

    func testRenewWithANewLeaseAndAfterUnlock() async throws {
        let handle = try await client.lock(uniqueName(), lease: .seconds(5))
        try await client.renew(handle, lease: .seconds(60))
        try await client.renew(handle)
        XCTAssertNil(handle.lostReason)
        try await client.unlock(handle)
        await assertThrows(try await client.renew(handle)) {
            $0 as? LDLMClientError == .lockLost(.released)
        }
        // Unlocking again does nothing.
        try await client.unlock(handle)
    }

    func testRenewRefusedByTheServerEndsTheHold() async throws {
        let name = uniqueName()
        let handle = try await client.lock(name, lease: .seconds(3))
        try await unlockFromAnotherSession(name: name, key: handle.key, port: Self.server.port)
        await assertThrows(try await client.renew(handle)) {
            if case LDLMClientError.lockDoesNotExistOrInvalidKey = $0 { return true }
            return false
        }
        guard case .renewFailed(.lockDoesNotExistOrInvalidKey)? = handle.lostReason else {
            return XCTFail("lost reason: \(String(describing: handle.lostReason))")
        }
    }

    func testAutomaticRenewFailureFiresLost() async throws {
        let name = uniqueName()
        let start = ContinuousClock.now
        let handle = try await client.lock(name, lease: .seconds(2))
        try await unlockFromAnotherSession(name: name, key: handle.key, port: Self.server.port)
        // The first renew goes out at about a third of the lease.
        let reason = try await withTimeout(2) { try await handle.waitUntilLost() }
        guard case .renewFailed(.lockDoesNotExistOrInvalidKey) = reason else {
            return XCTFail("lost reason: \(reason)")
        }
        XCTAssertLessThan(elapsed(since: start), 1.5)
    }

    func testCallsFromManyTasksAtOnce() async throws {
        let client = self.client!
        let shared = uniqueName()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<40 {
                group.addTask {
                    let name = index.isMultiple(of: 2) ? shared : "\(shared)-\(index)"
                    try await client.withLock(name) { handle in
                        XCTAssertNil(handle.lostReason)
                    }
                }
            }
            try await group.waitForAll()
        }
        let free = try await other.tryLock(shared)
        XCTAssertNotNil(free)
    }
}
