import Foundation
import LDLMCore
import XCTest

/// Drives a LockTable with seeded random operations and compares every step
/// against a plain model of the same rules.
final class RandomizedModelTests: XCTestCase {
    func testRandomOperationsMatchTheModel() {
        for seed: UInt64 in [1, 2, 3, 0xDEAD_BEEF] {
            let run = ModelRun(seed: seed)
            run.run(steps: 3000)
            if run.failed { break }
        }
    }

    /// Undeliverable grants make handlers call back into the table mid-delivery.
    func testRandomOperationsWithReentrantHandlersMatchTheModel() {
        for seed: UInt64 in [11, 12, 13] {
            let run = ModelRun(seed: seed, undeliverablePercent: 25)
            run.run(steps: 3000)
            if run.failed { break }
        }
    }

    /// More names and sessions, so sessions list many holds and swap-remove
    /// moves them (including several holds of one sized lock); renewals adopt
    /// kept holds. `LDLM_MODEL_SEEDS` and `LDLM_MODEL_STEPS` make it longer.
    func testManySessionsAndNamesMatchTheModel() {
        let environment = ProcessInfo.processInfo.environment
        let seeds = environment["LDLM_MODEL_SEEDS"].flatMap { UInt64($0) } ?? 4
        let steps = environment["LDLM_MODEL_STEPS"].flatMap { Int($0) } ?? 4000
        for seed in UInt64(100)..<(100 + seeds) {
            let run = ModelRun(seed: seed, undeliverablePercent: seed % 2 == 0 ? 0 : 15, nameCount: 7, sessionCount: 6)
            run.run(steps: steps)
            if run.failed { break }
        }
    }
}

/// SplitMix64: tiny, seedable and the same on every platform, unlike the
/// standard library's `random(in:using:)` algorithms, which may change.
struct SeededGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }

    mutating func percent(_ chance: Int) -> Bool {
        below(100) < chance
    }

    mutating func pick<T>(_ items: [T]) -> T {
        items[below(items.count)]
    }
}

private struct ModelHolder {
    /// Known at once for tryLock/lock, or from the handler call for a grant.
    var grant: LockGrant?
    /// The queued request this slot was granted to, if any.
    let request: Int?
    /// Creation order, so picking a holder does not depend on random key values.
    let serial: Int
    var session: SessionID?
    var leaseDeadline: UInt64?
}

private struct ModelWaiter {
    let request: Int
    let session: SessionID
    let leaseSeconds: Int32
    let waitDeadline: UInt64?
    let undeliverable: Bool
}

private struct ModelLock {
    let size: Int32
    var holders: [ModelHolder] = []
    var queue: [ModelWaiter] = []

    var isIdle: Bool { holders.isEmpty && queue.isEmpty }
}

/// What a holder looks like from outside, comparable without caring about order.
private struct HolderView: Equatable, Comparable, CustomStringConvertible {
    let key: LockKey
    let fencingToken: UInt64
    let session: SessionID?
    let leaseDeadline: UInt64?

    static func < (lhs: HolderView, rhs: HolderView) -> Bool {
        (lhs.key.high, lhs.key.low) < (rhs.key.high, rhs.key.low)
    }

    var description: String {
        "\(key) token \(fencingToken) \(session.map(\.description) ?? "kept") lease \(leaseDeadline.map(String.init) ?? "none")"
    }
}

private enum Fault: CaseIterable {
    case endedSession, badSize, negativeLease, negativeWait
}

private final class ModelRun {
    let seed: UInt64
    let undeliverablePercent: Int
    var rng: SeededGenerator
    let clock = FakeClock()
    let table: LockTable
    let names: [String]

    var locks: [String: ModelLock] = [:]
    var openSessions: [SessionID] = []
    var endedSessions: [SessionID] = []

    var nextRequest = 0
    var tickets: [Int: WaitTicket] = [:]
    var queuedRequests: [Int] = []
    var requestNames: [Int: String] = [:]
    var undeliverableRequests: Set<Int> = []
    /// Requests whose handler has been called or that were withdrawn.
    var endedRequests: Set<Int> = []
    var lastGrantedRequest: [String: Int] = [:]

    var holderSerial = 0
    var issuedKeys: Set<LockKey> = []
    /// The largest fencing token each name has handed out in earlier steps.
    var highestToken: [String: UInt64] = [:]
    var releasedKeys: [(name: String, key: LockKey)] = []

    // Per step.
    var events: [(request: Int, outcome: WaitOutcome)] = []
    var handlerErrors: [String] = []
    var expectedGrants: [Int] = []
    var expectedTimeouts: Set<Int> = []
    var pendingUndeliverable: [(name: String, request: Int)] = []

    var step = 0
    var operation = ""
    private(set) var failed = false

    init(seed: UInt64, undeliverablePercent: Int = 0, nameCount: Int = 3, sessionCount: Int = 4) {
        self.seed = seed
        self.undeliverablePercent = undeliverablePercent
        names = ["a", "b", "c", "d-a-name-longer-than-fifteen-bytes", "e", "f\u{E9}", "g"].prefix(nameCount).map { $0 }
        rng = SeededGenerator(seed: seed)
        table = LockTable(clock: clock, fencingTokens: FencingTokenSource(startingAbove: 1_000))
        for _ in 0..<sessionCount {
            openSessions.append(table.openSession())
        }
    }

    func run(steps: Int) {
        for index in 0..<steps {
            step = index
            randomStep()
            if failed { return }
        }
        drain()
    }

    // MARK: Checking

    func check(_ condition: Bool, _ message: @autoclosure () -> String, line: UInt = #line) {
        guard !condition else { return }
        if !failed {
            XCTFail("seed \(seed) step \(step) \(operation): \(message())", line: line)
        }
        failed = true
    }

    /// Runs `body`; true when it succeeded, as the model expected or not.
    func succeeds(_ body: () throws(LockFailure) -> Void, expected: LockFailure?) -> Bool {
        do {
            try body()
            check(expected == nil, "succeeded, expected \(expected!)")
            return true
        } catch {
            checkFailure(error, expected: expected.map { Result<Void, LockFailure>.failure($0) } ?? .success(()))
            return false
        }
    }

    // MARK: Operations

    func randomStep() {
        events = []
        expectedGrants = []
        expectedTimeouts = []
        pendingUndeliverable = []
        var advanced = false
        switch rng.below(100) {
        case 0..<15: tryLockStep()
        case 15..<45: lockStep()
        case 45..<65: unlockStep()
        case 65..<73: cancelStep()
        case 73..<80: renewStep()
        case 80..<84: closeStep()
        default:
            advanceStep()
            advanced = true
        }
        finishStep()
        checkInvariants(afterExpireDue: advanced)
    }

    func pickFault() -> Fault? {
        rng.percent(5) ? rng.pick(Fault.allCases) : nil
    }

    func pickSession(_ fault: Fault?) -> SessionID {
        if fault == .endedSession {
            return endedSessions.isEmpty ? SessionID(rawValue: 1_000_000) : rng.pick(endedSessions)
        }
        return rng.pick(openSessions)
    }

    func pickSize(_ name: String, _ fault: Fault?) -> Int32 {
        if fault == .badSize { return Int32(-rng.below(2)) }
        if let size = locks[name]?.size, rng.percent(95) { return size }
        return Int32(1 + rng.below(3))
    }

    /// The failure a request must get before the lock's state is looked at.
    func validationFailure(_ fault: Fault?, size: Int32) -> LockFailure? {
        switch fault {
        case .endedSession, .negativeLease, .negativeWait: return .invalidArgument("")
        case .badSize: return .invalidLockSize(size)
        case nil: return nil
        }
    }

    func tryLockStep() {
        var fault = pickFault()
        if fault == .negativeWait { fault = nil }
        let name = rng.pick(names)
        let session = pickSession(fault)
        let size = pickSize(name, fault)
        let lease: Int32 = fault == .negativeLease ? -1 : rng.pick([0, 0, 1, 2, 5])
        operation = "tryLock(\(name), size: \(size), lease: \(lease), \(session))"

        let expected: Result<LockGrant?, LockFailure>
        if let failure = validationFailure(fault, size: size) {
            expected = .failure(failure)
        } else if let lock = locks[name], lock.size != size {
            expected = .failure(.lockSizeMismatch(name: name, lockSize: lock.size, requestedSize: size))
        } else if let lock = locks[name], lock.holders.count >= Int(size) || !lock.queue.isEmpty {
            expected = .success(nil)
        } else {
            expected = .success(LockGrant(key: LockKey(high: 0, low: 0), fencingToken: 0))  // placeholder: any grant
        }

        do {
            let grant = try table.tryLock(name: name, size: size, leaseSeconds: lease, session: session)
            switch expected {
            case .success(nil):
                check(grant == nil, "acquired \(String(describing: grant)) but the lock is full or has waiters")
            case .success:
                guard let grant else { return check(false, "returned nil for a free lock") }
                addHolder(name: name, size: size, grant: grant, session: session, leaseSeconds: lease)
            case .failure(let failure):
                check(false, "returned \(String(describing: grant)), expected \(failure)")
            }
        } catch {
            checkFailure(error, expected: expected)
        }
    }

    func lockStep() {
        let fault = pickFault()
        let name = rng.pick(names)
        let session = pickSession(fault)
        let size = pickSize(name, fault)
        let lease: Int32 = fault == .negativeLease ? -1 : rng.pick([0, 0, 1, 2, 5])
        let wait: Int32 = fault == .negativeWait ? -2 : rng.pick([0, 0, 1, 3])
        let undeliverable = rng.percent(undeliverablePercent)
        nextRequest += 1
        let request = nextRequest
        operation = "lock#\(request)(\(name), size: \(size), lease: \(lease), wait: \(wait), \(session)"
            + (undeliverable ? ", undeliverable)" : ")")

        let expected: Result<Bool, LockFailure>  // true: acquires at once
        if let failure = validationFailure(fault, size: size) {
            expected = .failure(failure)
        } else if let lock = locks[name], lock.size != size {
            expected = .failure(.lockSizeMismatch(name: name, lockSize: lock.size, requestedSize: size))
        } else if let lock = locks[name], lock.holders.count >= Int(size) || !lock.queue.isEmpty {
            expected = .success(false)
        } else {
            expected = .success(true)
        }

        let handler: (WaitOutcome) -> Void = { [unowned self] outcome in
            events.append((request, outcome))
            guard undeliverable, case .granted(let grant) = outcome else { return }
            do throws(LockFailure) {
                try table.unlock(name: name, key: grant.key.description)
            } catch {
                handlerErrors.append("request \(request) could not undo its grant: \(error)")
            }
        }
        let attempt: LockAttempt
        var madeHandlers = 0
        do {
            attempt = try table.lock(
                name: name,
                size: size,
                leaseSeconds: lease,
                waitTimeoutSeconds: wait,
                session: session
            ) {
                madeHandlers += 1
                return handler
            }
        } catch {
            check(madeHandlers == 0, "made an outcome handler for a rejected call")
            return checkFailure(error, expected: expected)
        }
        check(madeHandlers == (attempt.ticket == nil ? 0 : 1), "made \(madeHandlers) outcome handlers for \(attempt)")
        switch (attempt, expected) {
        case (.acquired(let grant), .success(true)):
            addHolder(name: name, size: size, grant: grant, session: session, leaseSeconds: lease)
        case (.queued(let ticket), .success(false)):
            tickets[request] = ticket
            queuedRequests.append(request)
            requestNames[request] = name
            if undeliverable { undeliverableRequests.insert(request) }
            let waitDeadline = wait > 0 ? clock.deadline(afterSeconds: Int(wait)) : nil
            locks[name]!.queue.append(ModelWaiter(
                request: request,
                session: session,
                leaseSeconds: lease,
                waitDeadline: waitDeadline,
                undeliverable: undeliverable
            ))
        default:
            check(false, "returned \(attempt), expected \(expected)")
        }
    }

    func unlockStep() {
        let live = liveKeys()
        var name = rng.pick(names)
        var keyText = unheldKey().description
        switch rng.below(100) {
        case 0..<70 where !live.isEmpty:
            let pair = rng.pick(live)
            (name, keyText) = (pair.name, pair.key.description)
        case 70..<80 where !releasedKeys.isEmpty:
            let pair = rng.pick(releasedKeys)
            (name, keyText) = (pair.name, pair.key.description)
        case 80..<90:
            name = "zzz"
        case 90..<95:
            keyText = "garbage"
        default:
            break
        }
        operation = "unlock(\(name), \(keyText))"

        let index = LockKey(keyText).flatMap { key in locks[name]?.holders.firstIndex { $0.grant?.key == key } }
        let expected: LockFailure? =
            locks[name] == nil ? .lockDoesNotExist(name: name)
            : index == nil ? .invalidLockKey(name: name)
            : nil
        guard succeeds({ () throws(LockFailure) in try table.unlock(name: name, key: keyText) }, expected: expected),
              let index
        else { return }
        releaseHolder(at: index, of: name)
        grantFreeSlots(of: name)
        removeIfIdle(name)
        settleUndeliverableGrants()
    }

    func cancelStep() {
        guard !queuedRequests.isEmpty else { return }
        let request = rng.pick(queuedRequests)
        let ticket = tickets[request]!
        let name = requestNames[request]!
        operation = "cancelWait(#\(request) on \(name))"
        let queued = locks[name]?.queue.firstIndex { $0.request == request }

        let cancelled = table.cancelWait(ticket)

        check(cancelled == (queued != nil), "returned \(cancelled) for a \(queued == nil ? "finished" : "queued") wait")
        guard let queued else { return }
        locks[name]!.queue.remove(at: queued)
        endedRequests.insert(request)
        removeIfIdle(name)
    }

    func renewStep() {
        let live = liveKeys()
        var name = rng.pick(names)
        var key = unheldKey()
        if !live.isEmpty, rng.percent(80) {
            (name, key) = rng.pick(live)
        } else if !releasedKeys.isEmpty, rng.percent(50) {
            key = rng.pick(releasedKeys).key
        }
        let lease: Int32 = rng.pick([-1, 0, 1, 2, 4, 4])
        // A renewal names its session, as the server's do: a kept hold joins it.
        let adopting: SessionID? = rng.percent(50) ? rng.pick(openSessions) : nil
        operation = "renew(\(name), \(key), lease: \(lease), \(adopting.map(\.description) ?? "no session"))"

        let index = locks[name]?.holders.firstIndex { $0.grant?.key == key }
        let expected: LockFailure? =
            lease <= 0 ? .invalidArgument("")
            : index == nil ? .lockDoesNotExistOrInvalidKey(name: name)
            : nil
        var token: UInt64?
        guard succeeds({ () throws(LockFailure) in
            token = try table.renew(name: name, key: key.description, leaseSeconds: lease, session: adopting)
        }, expected: expected), let index else { return }
        locks[name]!.holders[index].leaseDeadline = clock.deadline(afterSeconds: Int(lease))
        if locks[name]!.holders[index].session == nil, let adopting {
            locks[name]!.holders[index].session = adopting
        }
        let held = locks[name]!.holders[index].grant?.fencingToken
        check(token == held, "renew returned token \(String(describing: token)), the hold has \(String(describing: held))")
    }

    func closeStep() {
        let index = rng.below(openSessions.count)
        let session = openSessions.remove(at: index)
        let releasing = rng.percent(50)
        operation = "closeSession(\(session), releasingLocks: \(releasing))"

        table.closeSession(session, releasingLocks: releasing)

        endedSessions.append(session)
        for name in locks.keys.sorted() {
            locks[name]!.queue.removeAll { waiter in
                guard waiter.session == session else { return false }
                endedRequests.insert(waiter.request)
                return true
            }
            if releasing {
                while let holder = locks[name]!.holders.firstIndex(where: { $0.session == session }) {
                    releaseHolder(at: holder, of: name)
                }
                grantFreeSlots(of: name)
            } else {
                for holder in locks[name]!.holders.indices where locks[name]!.holders[holder].session == session {
                    locks[name]!.holders[holder].session = nil
                }
            }
            removeIfIdle(name)
        }
        settleUndeliverableGrants()
        openSessions.append(table.openSession())
    }

    /// Moves time on, never past a live deadline, as a server's timer would.
    func advanceStep() {
        let anyDelta = rng.next() % 3_000_000_000
        var delta: UInt64 = rng.pick([1, 250_000_000, 1_000_000_000, anyDelta])
        if let next = nextLiveDeadline(), next >= clock.nanosecondsNow {
            delta = min(delta, next - clock.nanosecondsNow)
        }
        clock.advance(nanoseconds: delta)
        let now = clock.nanosecondsNow
        operation = "advance(\(delta) ns) + expireDue() at \(now)"

        table.expireDue()

        // Leases before waits, so a wait ending at the same instant a slot frees
        // gets the slot, as the table documents by its order.
        for name in locks.keys.sorted() {
            while let index = locks[name]!.holders.firstIndex(where: { ($0.leaseDeadline ?? .max) <= now }) {
                releaseHolder(at: index, of: name)
            }
            grantFreeSlots(of: name)
            removeIfIdle(name)
        }
        for name in locks.keys.sorted() {
            locks[name]!.queue.removeAll { waiter in
                guard let deadline = waiter.waitDeadline, deadline <= now else { return false }
                expectedTimeouts.insert(waiter.request)
                return true
            }
            grantFreeSlots(of: name)
            removeIfIdle(name)
        }
        settleUndeliverableGrants()
    }

    /// Ends the run with every session closed and every kept hold unlocked.
    func drain() {
        while !openSessions.isEmpty, !failed {
            events = []
            expectedGrants = []
            expectedTimeouts = []
            pendingUndeliverable = []
            let session = openSessions.removeFirst()
            operation = "drain: closeSession(\(session))"
            table.closeSession(session, releasingLocks: true)
            endedSessions.append(session)
            for name in locks.keys.sorted() {
                locks[name]!.queue.removeAll { waiter in
                    guard waiter.session == session else { return false }
                    endedRequests.insert(waiter.request)
                    return true
                }
                while let holder = locks[name]!.holders.firstIndex(where: { $0.session == session }) {
                    releaseHolder(at: holder, of: name)
                }
                grantFreeSlots(of: name)
                removeIfIdle(name)
            }
            settleUndeliverableGrants()
            finishStep()
            checkInvariants(afterExpireDue: false)
        }
        events = []
        for (name, lock) in locks {
            for holder in lock.holders {
                guard let key = holder.grant?.key else { continue }
                operation = "drain: unlock(\(name), \(key))"
                do throws(LockFailure) {
                    try table.unlock(name: name, key: key.description)
                } catch {
                    check(false, "kept hold could not be unlocked: \(error)")
                }
            }
        }
        check(events.isEmpty, "handlers called after every session ended: \(events)")
        check(table.lockCount == 0, "\(table.lockCount) locks left after draining")
        check(table.sessionCount == 0, "\(table.sessionCount) sessions left after draining")
    }

    // MARK: Model rules

    /// A slot taken at once by tryLock or lock.
    func addHolder(name: String, size: Int32, grant: LockGrant, session: SessionID, leaseSeconds: Int32) {
        check(issuedKeys.insert(grant.key).inserted, "key \(grant.key) issued twice")
        checkTokensIncrease(name, [grant.fencingToken])
        if locks[name] == nil { locks[name] = ModelLock(size: size) }
        locks[name]!.holders.append(ModelHolder(
            grant: grant,
            request: nil,
            serial: nextHolderSerial(),
            session: session,
            leaseDeadline: leaseSeconds > 0 ? clock.deadline(afterSeconds: Int(leaseSeconds)) : nil
        ))
    }

    func releaseHolder(at index: Int, of name: String) {
        let holder = locks[name]!.holders.remove(at: index)
        if let key = holder.grant?.key { releasedKeys.append((name, key)) }
    }

    func grantFreeSlots(of name: String) {
        guard var lock = locks[name] else { return }
        while lock.holders.count < Int(lock.size), !lock.queue.isEmpty {
            let waiter = lock.queue.removeFirst()
            expectedGrants.append(waiter.request)
            lock.holders.append(ModelHolder(
                grant: nil,
                request: waiter.request,
                serial: nextHolderSerial(),
                session: waiter.session,
                leaseDeadline: waiter.leaseSeconds > 0 ? clock.deadline(afterSeconds: Int(waiter.leaseSeconds)) : nil
            ))
            if waiter.undeliverable { pendingUndeliverable.append((name, waiter.request)) }
        }
        locks[name] = lock
    }

    /// Handlers run after the operation, so an undeliverable grant's unlock
    /// happens after the operation's own releases and timeouts.
    func settleUndeliverableGrants() {
        while !pendingUndeliverable.isEmpty {
            let (name, request) = pendingUndeliverable.removeFirst()
            guard let index = locks[name]?.holders.firstIndex(where: { $0.request == request }) else {
                return check(false, "undeliverable grant #\(request) vanished from the model")
            }
            locks[name]!.holders.remove(at: index)
            grantFreeSlots(of: name)
            removeIfIdle(name)
        }
    }

    func removeIfIdle(_ name: String) {
        if locks[name]?.isIdle == true { locks[name] = nil }
    }

    func nextHolderSerial() -> Int {
        holderSerial += 1
        return holderSerial
    }

    /// In creation order: dictionary order and key values vary between runs,
    /// and only the seed may steer a run.
    func liveKeys() -> [(name: String, key: LockKey)] {
        var holders: [(name: String, holder: ModelHolder)] = []
        for (name, lock) in locks {
            holders += lock.holders.map { (name, $0) }
        }
        return holders.sorted { $0.holder.serial < $1.holder.serial }.compactMap { entry in
            entry.holder.grant.map { (entry.name, $0.key) }
        }
    }

    func nextLiveDeadline() -> UInt64? {
        let leases = locks.values.flatMap { $0.holders.compactMap(\.leaseDeadline) }
        let waits = locks.values.flatMap { $0.queue.compactMap(\.waitDeadline) }
        return (leases + waits).min()
    }

    // MARK: After each step

    func checkFailure<T>(_ error: LockFailure, expected: Result<T, LockFailure>) {
        guard case .failure(let failure) = expected else {
            return check(false, "threw \(error), expected success")
        }
        if case .invalidArgument = failure, case .invalidArgument = error { return }
        check(error == failure, "threw \(error), expected \(failure)")
    }

    /// Every acquisition of `name` gets a larger fencing token than the one
    /// before: `tokens` are this step's, in the order the slots were taken.
    func checkTokensIncrease(_ name: String, _ tokens: [UInt64]) {
        let previous = highestToken[name] ?? 0
        check(zip([previous] + tokens, tokens).allSatisfy { $0 < $1 },
              "\(name) handed out fencing tokens \(tokens) after \(previous)")
        highestToken[name] = max(previous, tokens.max() ?? 0)
    }

    /// Matches the handler calls of one step against the model's grants and
    /// timeouts, then fills in the keys and tokens the grants handed out.
    func finishStep() {
        check(handlerErrors.isEmpty, "\(handlerErrors)")
        var grants: [Int: LockGrant] = [:]
        var timedOut: Set<Int> = []
        var handlerOrder: [String: [Int]] = [:]
        for (request, outcome) in events {
            check(!endedRequests.contains(request), "handler of finished/withdrawn request #\(request) called with \(outcome)")
            check(grants[request] == nil && !timedOut.contains(request), "handler of #\(request) called twice")
            endedRequests.insert(request)
            switch outcome {
            case .granted(let grant):
                grants[request] = grant
                handlerOrder[requestNames[request]!, default: []].append(request)
                check(issuedKeys.insert(grant.key).inserted, "key \(grant.key) issued twice")
            case .timedOut:
                timedOut.insert(request)
            case .withdrawn:
                check(false, "request #\(request) withdrawn, but the model never drains")
            }
        }
        check(Set(grants.keys) == Set(expectedGrants),
              "granted \(grants.keys.sorted()), model granted \(expectedGrants)")
        check(timedOut == expectedTimeouts, "timed out \(timedOut.sorted()), model timed out \(expectedTimeouts.sorted())")

        // FIFO per lock: every grant goes to a later arrival than the last one.
        for (name, requests) in handlerOrder {
            let earliest = requests.min()!
            check(earliest > lastGrantedRequest[name, default: 0],
                  "\(name) granted #\(earliest) after #\(lastGrantedRequest[name, default: 0])")
            lastGrantedRequest[name] = requests.max()!
            // Slots go to waiters in arrival order, so their tokens rise with it.
            checkTokensIncrease(name, requests.sorted().map { grants[$0]!.fencingToken })
            // Nested delivery from a re-entrant handler may interleave calls;
            // without one, handlers run in grant order.
            if undeliverableRequests.isDisjoint(with: requests) {
                check(requests == requests.sorted(), "\(name) handlers called out of order: \(requests)")
            }
        }

        for name in locks.keys.sorted() {
            for index in locks[name]!.holders.indices where locks[name]!.holders[index].grant == nil {
                let request = locks[name]!.holders[index].request!
                guard let grant = grants[request] else {
                    return check(false, "model granted #\(request) but its handler saw no grant")
                }
                locks[name]!.holders[index].grant = grant
            }
        }
    }

    func checkInvariants(afterExpireDue: Bool) {
        guard !failed else { return }
        check(table.lockCount == locks.count, "lockCount \(table.lockCount), model has \(locks.count)")
        check(table.sessionCount == openSessions.count, "sessionCount \(table.sessionCount), model \(openSessions.count)")
        let modelHolders = locks.values.reduce(0) { $0 + $1.holders.count }
        check(table.holderCount == modelHolders, "holderCount \(table.holderCount), model \(modelHolders)")

        var seenKeys: Set<LockKey> = []
        for name in Set(names).union(locks.keys) {
            let info = table.lockInfo(name: name)
            guard let lock = locks[name] else {
                check(info == nil, "\(name) is live in the table but idle in the model: \(String(describing: info))")
                continue
            }
            guard let info else {
                check(false, "\(name) is idle in the table but live in the model")
                continue
            }
            check(info.size == lock.size, "\(name) size \(info.size), model \(lock.size)")
            check(info.holders.count <= Int(info.size), "\(name) has \(info.holders.count) holders for size \(info.size)")
            check(info.waiterCount == lock.queue.count, "\(name) has \(info.waiterCount) waiters, model \(lock.queue.count)")
            for holder in info.holders {
                check(seenKeys.insert(holder.key).inserted, "key \(holder.key) holds two slots")
            }
            let actual = info.holders
                .map { HolderView(key: $0.key, fencingToken: $0.fencingToken, session: $0.session, leaseDeadline: $0.leaseDeadline) }
                .sorted()
            let expected = lock.holders
                .map { HolderView(key: $0.grant!.key, fencingToken: $0.grant!.fencingToken, session: $0.session, leaseDeadline: $0.leaseDeadline) }
                .sorted()
            check(actual == expected, "\(name) holders \(actual), model \(expected)")
        }

        for session in openSessions {
            let modelCount = locks.values.reduce(0) { $0 + $1.holders.filter { $0.session == session }.count }
            check(table.heldLockCount(session: session) == modelCount,
                  "\(session) holds \(table.heldLockCount(session: session)), model \(modelCount)")
        }
        for session in endedSessions.suffix(5) {
            check(table.heldLockCount(session: session) == 0, "ended \(session) still counts holds")
        }

        if let live = nextLiveDeadline() {
            check((table.nextDeadline ?? .max) <= live, "nextDeadline \(String(describing: table.nextDeadline)) is after live deadline \(live)")
        }
        if afterExpireDue, let next = table.nextDeadline {
            check(next > clock.nanosecondsNow, "expireDue left a due deadline \(next) at \(clock.nanosecondsNow)")
        }
    }
}
