import Foundation
import LDLMClient
import NIOPosix
import XCTest

/// Cancelled `lock` calls and `withLock` bodies leave nothing held.
final class CancellationTests: XCTestCase {
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

    private var holder: LDLMClient!
    private var waiter: LDLMClient!
    private var checker: LDLMClient!

    override func setUp() async throws {
        holder = try makeClient([Self.server])
        waiter = try makeClient([Self.server])
        checker = try makeClient([Self.server])
    }

    override func tearDown() async throws {
        for client in [holder, waiter, checker] { await client!.close() }
    }

    func testCancellingAWaitingLockWithdrawsItFromTheServersQueue() async throws {
        let name = uniqueName()
        let held = try await holder.lock(name)
        // The waiter gets an event loop of its own, to stall below.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let waiter = try makeClient([Self.server]) { $0.eventLoopGroup = group }
        let waiting = Task { try await waiter.lock(name) }
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        waiting.cancel()
        await assertThrows(try await waiting.value) { $0 is CancellationError }
        XCTAssertLessThan(elapsed(since: start), 0.2, "the cancel waits for nothing")

        // With the waiter stalled, a grant the server still sent it would stay
        // held: only a withdrawn waiter leaves the lock free.
        let stall = group.next().submit { Thread.sleep(forTimeInterval: 1) }
        try await holder.unlock(held)
        try await Task.sleep(for: .milliseconds(200))
        let taken = try await checker.tryLock(name)
        XCTAssertNotNil(taken, "the server kept the cancelled waiter queued")
        try await stall.get()
        await waiter.close()
        try await group.shutdownGracefully()
    }

    /// The grant and the cancel cross. Either the server withdraws the waiter,
    /// or the grant wins and the caller gets the handle, or the grant was
    /// already on the wire when the reset went out: HTTP/2 then drops it unseen,
    /// and the server, seeing a reset of a stream it had finished, undoes the
    /// grant. In every case the lock is free again at once, never only when
    /// the (here 30 s) lease runs out.
    func testCancelRacingTheGrantLeavesNothingHeld() async throws {
        let waiter = self.waiter!
        for round in 0..<10 {
            let name = uniqueName() + "-\(round)"
            let held = try await holder.lock(name)
            let waiting = Task { try await waiter.lock(name, lease: .seconds(30)) }
            try await Task.sleep(for: .milliseconds(50))
            async let unlocked: Void = holder.unlock(held)
            waiting.cancel()
            try await unlocked
            if let granted = try? await waiting.value {
                try await waiter.unlock(granted)
            }
            let taken = try await eventually(within: 2) { try await self.checker.tryLock(name) }
            try await checker.unlock(taken)
        }
    }

    private func eventually(within seconds: Double, _ attempt: () async throws -> LockHandle?) async throws -> LockHandle {
        let start = ContinuousClock.now
        while elapsed(since: start) < seconds {
            if let handle = try await attempt() { return handle }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(seconds: seconds)
    }

    func testCancellingBeforeTheCallStartsSendsNothing() async throws {
        let name = uniqueName()
        let waiter = self.waiter!
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await waiter.lock(name)
        }
        await assertThrows(try await task.value) { $0 is CancellationError }
        let taken = try await checker.tryLock(name)
        XCTAssertNotNil(taken)
    }

    func testWithLockReleasesWhenTheBodyReturnsOrThrows() async throws {
        struct BodyFailed: Error {}
        let name = uniqueName()
        let value = try await waiter.withLock(name) { handle -> Int in
            let held = try await checker.tryLock(name)
            XCTAssertNil(held)
            return 42
        }
        XCTAssertEqual(value, 42)
        let afterReturn = try await checker.tryLock(name)
        XCTAssertNotNil(afterReturn)
        try await checker.unlock(XCTUnwrap(afterReturn))

        await assertThrows(try await waiter.withLock(name) { _ in throw BodyFailed() }) { $0 is BodyFailed }
        let afterThrow = try await checker.tryLock(name)
        XCTAssertNotNil(afterThrow)
    }

    func testWithLockReleasesWhenItsTaskIsCancelled() async throws {
        let name = uniqueName()
        let waiter = self.waiter!
        let entered = AsyncStream<Void>.makeStream()
        let task = Task {
            try await waiter.withLock(name) { _ in
                entered.continuation.yield()
                try await Task.sleep(for: .seconds(60))
            }
        }
        for await _ in entered.stream { break }
        task.cancel()
        await assertThrows(try await withTimeout(2) { try await task.value }) { $0 is CancellationError }
        let taken = try await checker.tryLock(name)
        XCTAssertNotNil(taken, "withLock released on cancellation")
    }

    func testWithLockCancelledWhileWaitingHoldsNothing() async throws {
        let name = uniqueName()
        let held = try await holder.lock(name)
        let waiter = self.waiter!
        let task = Task { try await waiter.withLock(name) { _ in XCTFail("the body ran") } }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        await assertThrows(try await withTimeout(2) { try await task.value }) { $0 is CancellationError }
        try await holder.unlock(held)
        try await Task.sleep(for: .milliseconds(200))
        let taken = try await checker.tryLock(name)
        XCTAssertNotNil(taken)
    }
}
