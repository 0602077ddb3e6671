import LDLMCore
import XCTest

/// A clock that only moves when a test says so.
final class FakeClock: LockClock {
    // Starts far from zero so nothing can pass by treating 0 as "no deadline".
    var nanosecondsNow: UInt64 = 1_000_000_000_000

    func advance(seconds: Int) {
        nanosecondsNow += UInt64(seconds) * 1_000_000_000
    }

    func advance(nanoseconds: UInt64) {
        nanosecondsNow += nanoseconds
    }

    func deadline(afterSeconds seconds: Int) -> UInt64 {
        nanosecondsNow + UInt64(seconds) * 1_000_000_000
    }
}

/// Records every outcome handler call, labelled by the test, and every
/// handler a `lock` call asked for.
final class OutcomeLog {
    private(set) var calls: [(label: String, outcome: WaitOutcome)] = []
    /// Labels of the handlers `lock` made, in order: one per queued call.
    private(set) var madeHandlers: [String] = []

    func handler(_ label: String) -> (WaitOutcome) -> Void {
        { [unowned self] outcome in self.calls.append((label, outcome)) }
    }

    /// For `lock`'s `makeOutcomeHandler`: records that the call asked for one.
    func makeHandler(_ label: String) -> (WaitOutcome) -> Void {
        madeHandlers.append(label)
        return handler(label)
    }

    var labels: [String] { calls.map(\.label) }

    func outcomes(of label: String) -> [WaitOutcome] {
        calls.filter { $0.label == label }.map(\.outcome)
    }

    /// The key of the single grant `label` received; fails the test otherwise.
    func grantedKey(_ label: String, file: StaticString = #filePath, line: UInt = #line) -> LockKey? {
        grant(label, file: file, line: line)?.key
    }

    /// The single grant `label` received; fails the test otherwise.
    func grant(_ label: String, file: StaticString = #filePath, line: UInt = #line) -> LockGrant? {
        let outcomes = outcomes(of: label)
        guard outcomes.count == 1, case .granted(let grant) = outcomes[0] else {
            XCTFail("\(label) expected exactly one grant, got \(outcomes)", file: file, line: line)
            return nil
        }
        return grant
    }
}

func assertThrows<T>(
    _ expected: LockFailure,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () throws(LockFailure) -> T
) {
    do {
        let value = try body()
        XCTFail("expected \(expected), got \(value)", file: file, line: line)
    } catch {
        XCTAssertEqual(error, expected, file: file, line: line)
    }
}

/// Messages are for people, so only the case is checked.
func assertInvalidArgument<T>(
    file: StaticString = #filePath,
    line: UInt = #line,
    _ body: () throws(LockFailure) -> T
) {
    do {
        let value = try body()
        XCTFail("expected invalidArgument, got \(value)", file: file, line: line)
    } catch {
        guard case .invalidArgument = error else {
            XCTFail("expected invalidArgument, got \(error)", file: file, line: line)
            return
        }
    }
}

/// Ends a test whose failure was already recorded and cannot go on.
struct StopTest: Error {}

/// A well-formed key that no table handed out.
func unheldKey() -> LockKey {
    LockKeyGenerator().next()
}

extension LockAttempt {
    var acquiredKey: LockKey? {
        if case .acquired(let grant) = self { return grant.key }
        return nil
    }

    var ticket: WaitTicket? {
        if case .queued(let ticket) = self { return ticket }
        return nil
    }
}

/// Shared fixture: a table on a fake clock, and a handler log.
class LockTableTestCase: XCTestCase {
    /// The wall clock the table's fencing tokens start above (2025-12-01).
    static let startMicroseconds: UInt64 = 1_764_547_200_000_000

    var clock: FakeClock!
    var table: LockTable!
    var log: OutcomeLog!

    override func setUp() {
        super.setUp()
        clock = FakeClock()
        table = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: Self.startMicroseconds))
        log = OutcomeLog()
    }

    override func tearDown() {
        table = nil
        clock = nil
        log = nil
        super.tearDown()
    }

    /// A `lock` call that must queue; returns its ticket.
    @discardableResult
    func enqueue(
        _ label: String,
        name: String = "L",
        size: Int32 = 1,
        leaseSeconds: Int32 = 0,
        waitTimeoutSeconds: Int32 = 0,
        session: SessionID,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> WaitTicket {
        let madeBefore = log.madeHandlers.count
        let attempt = try table.lock(
            name: name,
            size: size,
            leaseSeconds: leaseSeconds,
            waitTimeoutSeconds: waitTimeoutSeconds,
            session: session
        ) { log.makeHandler(label) }
        guard let ticket = attempt.ticket else {
            XCTFail("\(label) expected to queue, got \(attempt)", file: file, line: line)
            throw StopTest()
        }
        XCTAssertEqual(log.madeHandlers.dropFirst(madeBefore), [label], "a queued call makes one handler", file: file, line: line)
        return ticket
    }

    /// A `tryLock` that must succeed; returns its key.
    func acquire(
        name: String = "L",
        size: Int32 = 1,
        leaseSeconds: Int32 = 0,
        session: SessionID,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> LockKey {
        try acquireGrant(name: name, size: size, leaseSeconds: leaseSeconds, session: session, file: file, line: line).key
    }

    /// A `tryLock` that must succeed; returns its key and fencing token.
    func acquireGrant(
        name: String = "L",
        size: Int32 = 1,
        leaseSeconds: Int32 = 0,
        session: SessionID,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> LockGrant {
        guard let grant = try table.tryLock(name: name, size: size, leaseSeconds: leaseSeconds, session: session) else {
            XCTFail("expected \(name) to be free", file: file, line: line)
            throw StopTest()
        }
        return grant
    }

    func holderKeys(_ name: String = "L") -> Set<LockKey> {
        Set(table.lockInfo(name: name)?.holders.map(\.key) ?? [])
    }
}
