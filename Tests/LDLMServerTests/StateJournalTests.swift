import Foundation
import LDLMCore
import LDLMStateLog
import Logging
import NIOCore
import NIOPosix
import XCTest

@testable import LDLMServer

/// The journal on a real event loop and sync thread, writing a real file.
final class StateJournalTests: XCTestCase {
    /// The table and journal live on the loop; tests reach them only through `onLoop`.
    private final class Fixture: @unchecked Sendable {
        let table = LockTable(clock: EventLoopClock(), fencingTokens: FencingTokenSource(startingAbove: 1_000))
        let journal: StateJournal

        init(journal: StateJournal) {
            self.journal = journal
            table.journal = journal
            journal.attached(to: table)
        }
    }

    private var group: MultiThreadedEventLoopGroup!
    private var path: String!

    override func setUp() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID())").path
    }

    override func tearDownWithError() throws {
        try group.syncShutdownGracefully()
        try? FileManager.default.removeItem(atPath: path)
    }

    private func makeFixture(minimumCompactionBytes: Int) throws -> Fixture {
        let (file, _) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        let journal = StateJournal(
            file: file, eventLoop: group.next(), logger: Logger(label: "test"), minimumCompactionBytes: minimumCompactionBytes
        )
        return Fixture(journal: journal)
    }

    /// Runs `body` on the loop and waits until what it changed is on disk.
    private func onLoop(_ fixture: Fixture, _ body: @escaping @Sendable (Fixture) throws -> Void) throws {
        let loop = group.next()
        try loop.flatSubmit { () -> EventLoopFuture<Void> in
            let synced = loop.makePromise(of: Void.self)
            do {
                try body(fixture)
                XCTAssertTrue(fixture.journal.hasUnsyncedChanges)
                fixture.journal.afterSync { synced.succeed() }
            } catch {
                synced.fail(error)
            }
            return synced.futureResult
        }.wait()
    }

    private func reopen() throws -> RecoveredState {
        let (file, contents) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        file.close()
        return RecoveredState(replaying: contents.records)
    }

    func testWhatIsAnsweredIsOnDiskAndReplaysToTheSameHolds() throws {
        let fixture = try makeFixture(minimumCompactionBytes: 1 << 30)
        let expected = LockedValue<(key: LockKey, leaseEnd: Int64)?>(nil)
        try onLoop(fixture) { fixture in
            let session = fixture.table.openSession()
            let kept = try XCTUnwrap(fixture.table.tryLock(name: "kept", size: 2, leaseSeconds: 60, session: session))
            let gone = try XCTUnwrap(fixture.table.tryLock(name: "gone", session: session))
            try fixture.table.unlock(name: "gone", key: gone.key.description)
            let leaseDeadline = try XCTUnwrap(fixture.table.lockInfo(name: "kept")?.holders.first?.leaseDeadline)
            expected.value = (kept.key, StateJournal.unixMilliseconds(atUptime: leaseDeadline))
        }
        let recovered = try reopenWhileOpen(fixture)
        let hold = try XCTUnwrap(recovered.holds.first)
        XCTAssertEqual(recovered.holds.count, 1)
        XCTAssertEqual(hold.name, "kept")
        XCTAssertEqual(hold.size, 2)
        XCTAssertEqual(hold.key, expected.value?.key)
        XCTAssertEqual(hold.fencingToken, 1_001)
        XCTAssertEqual(recovered.fencingTokenHighWater, 1_002)
        let lease = try XCTUnwrap(hold.leaseEndUnixMilliseconds)
        XCTAssertEqual(Double(lease), Double(try XCTUnwrap(expected.value?.leaseEnd)), accuracy: 50)
    }

    func testCompactionBoundsTheFileAndKeepsEveryHoldAndTheTokenHighWater() throws {
        let fixture = try makeFixture(minimumCompactionBytes: 4096)
        let kept = LockedValue<[LockKey]>([])
        for round in 0..<20 {
            try onLoop(fixture) { fixture in
                let session = fixture.table.openSession()
                for index in 0..<50 {
                    let name = "churn-\(index)"
                    let grant = try XCTUnwrap(fixture.table.tryLock(name: name, session: session))
                    try fixture.table.unlock(name: name, key: grant.key.description)
                }
                kept.value.append(try XCTUnwrap(fixture.table.tryLock(name: "kept-\(round)", session: session)).key)
            }
        }
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // 20 × 101 records of ~50 bytes were written: about 100 KB without compaction.
        XCTAssertLessThan(size, 3 * 4096, "the file was compacted")
        let recovered = try reopenWhileOpen(fixture)
        XCTAssertEqual(Set(recovered.holds.map(\.key)), Set(kept.value))
        XCTAssertEqual(recovered.fencingTokenHighWater, 1_000 + 20 * 51)
    }

    func testAReleaseByForceIsAnsweredOnlyOnceItIsOnDisk() throws {
        let (file, _) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        let loop = group.next()
        let journal = StateJournal(file: file, eventLoop: loop, logger: Logger(label: "test"))
        let restored = StateRecord.grant(name: "db", size: 1, key: LockKey(high: 7, low: 9), fencingToken: 5, leaseEndUnixMilliseconds: nil)
        let answers = RecordingAnswerSink()
        try loop.flatSubmit { () -> EventLoopFuture<Void> in
            let manager = LockManager(
                eventLoop: loop, clock: EventLoopClock(), fencingTokens: FencingTokenSource(startingAbove: 5),
                maxNameBytes: 1024, clearOnDisconnect: true, journal: journal
            )
            let answeredOnDisk = loop.makePromise(of: Void.self)
            do {
                try manager.restore(RecoveredState(replaying: [restored]), defaultLease: .seconds(60))
                XCTAssertEqual(try manager.forceUnlock(name: "db"), 1)
                let outcome = manager.durable(.reply([1, 2, 3], onUndelivered: nil)) { RPCResponder(sink: answers, streamID: 1) }
                guard case .deferred = outcome else { throw TestFailure("the answer went out before its release was synced") }
                XCTAssertEqual(answers.replies, [], "nothing answered before the sync")
                manager.afterSync {
                    XCTAssertEqual(answers.replies, [[1, 2, 3]])
                    answeredOnDisk.succeed()
                }
            } catch {
                answeredOnDisk.fail(error)
            }
            return answeredOnDisk.futureResult.flatMap { journal.close() }
        }.wait()
        XCTAssertEqual(try reopen().holds, [], "the release was on disk when it was answered")
    }

    func testARESTGrantIsAnsweredOnlyOnceOnDiskAndADrainKeepsItOnRecord() throws {
        try withRESTSessionOnAJournal { manager, gateway, _, cookie, answeredOnDisk in
            var statuses: [Int] = []
            let lock = RESTRequest(method: "POST", path: "/v1/lock", headers: [("Cookie", cookie)], body: Array(#"{"name":"db"}"#.utf8))
            gateway.handle(lock) { response in
                statuses.append(response.status)
                XCTAssertEqual(response.status, 200)
                // The drain ends the REST session; with a state file its lock stays on record.
                manager.beginDrain()
                XCTAssertEqual(manager.lockCount, 1)
                answeredOnDisk.succeed()
            }
            XCTAssertEqual(statuses, [], "nothing answered before the sync")
        }
        XCTAssertEqual(try reopen().holds.map(\.name), ["db"], "the grant was on disk when answered, and the drain kept it")
    }

    func testADeletedRESTSessionIsAnsweredOnlyOnceItsReleasesAreOnDisk() throws {
        try withRESTSessionOnAJournal { _, gateway, journal, cookie, answeredOnDisk in
            let lock = RESTRequest(method: "POST", path: "/v1/lock", headers: [("Cookie", cookie)], body: Array(#"{"name":"db"}"#.utf8))
            gateway.handle(lock) { response in
                XCTAssertEqual(response.status, 200)
                var statuses: [Int] = []
                gateway.handle(RESTRequest(method: "DELETE", path: "/session", headers: [("Cookie", cookie)], body: [])) { response in
                    statuses.append(response.status)
                    XCTAssertFalse(journal.hasUnsyncedChanges, "the session's release is on disk when answered")
                    answeredOnDisk.succeed()
                }
                XCTAssertEqual(statuses, [], "nothing answered before the sync")
            }
        }
        XCTAssertEqual(try reopen().holds, [])
    }

    /// Runs `body` on the event loop with a REST gateway over a manager that
    /// journals to the state file, and the cookie of a session opened on it;
    /// closes the journal once `body` completes the promise.
    private func withRESTSessionOnAJournal(
        _ body: @escaping (LockManager, RESTGateway, StateJournal, String, EventLoopPromise<Void>) throws -> Void
    ) throws {
        let (file, _) = try StateLogFile.open(path: path) { XCTFail("unexpected warning \($0)") }
        let loop = group.next()
        let journal = StateJournal(file: file, eventLoop: loop, logger: Logger(label: "test"))
        try loop.flatSubmit { () -> EventLoopFuture<Void> in
            let manager = LockManager(
                eventLoop: loop, clock: EventLoopClock(), fencingTokens: FencingTokenSource(startingAbove: 5),
                maxNameBytes: 1024, clearOnDisconnect: true, journal: journal
            )
            let gateway = RESTGateway(manager: manager, password: nil, idleTimeout: .seconds(60), maxSessions: 10, logger: Logger(label: "test"))
            let answeredOnDisk = loop.makePromise(of: Void.self)
            do {
                try manager.restore(RecoveredState(replaying: []), defaultLease: .seconds(60))
                var cookie = ""
                gateway.handle(RESTRequest(method: "POST", path: "/session", headers: [], body: [])) { response in
                    cookie = response.header("Set-Cookie")?.split(separator: ";").first.map(String.init) ?? ""
                }
                try body(manager, gateway, journal, cookie, answeredOnDisk)
            } catch {
                answeredOnDisk.fail(error)
            }
            return answeredOnDisk.futureResult.flatMap { journal.close() }
        }.wait()
    }

    /// Closes the journal (as a drain does), then reads the file back.
    private func reopenWhileOpen(_ fixture: Fixture) throws -> RecoveredState {
        try group.next().flatSubmit { fixture.journal.close() }.wait()
        return try reopen()
    }
}

/// A value the test thread and the loop hand to each other; `wait()` orders the accesses.
private final class LockedValue<Value>: @unchecked Sendable {
    var value: Value

    init(_ value: Value) {
        self.value = value
    }
}

/// Collects the answers a deferred call's responder delivers.
private final class RecordingAnswerSink: RPCAnswerSink, @unchecked Sendable {
    var replies: [[UInt8]] = []

    func answer(streamID: Int32, with answer: RPCAnswer) {
        if case .reply(let message, _, _) = answer { replies.append(message) }
    }
}

private struct TestFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
