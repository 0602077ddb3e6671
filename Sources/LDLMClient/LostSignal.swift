import NIOConcurrencyHelpers

/// Fires once with the reason a hold ended and wakes every task waiting for
/// it. Safe from any thread: waiters are async tasks, the firing side is an
/// event loop.
final class LostSignal: Sendable {
    private struct State {
        var reason: LostReason?
        var waiters: [Int: CheckedContinuation<LostReason, Error>] = [:]
        var nextWaiter = 0
    }

    private let state = NIOLockedValueBox(State())

    var reason: LostReason? { state.withLockedValue { $0.reason } }

    /// Records `reason` unless one was recorded already.
    func fire(_ reason: LostReason) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<LostReason, Error>] in
            guard state.reason == nil else { return [] }
            state.reason = reason
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            waiter.resume(returning: reason)
        }
    }

    func wait() async throws -> LostReason {
        let id = state.withLockedValue { state -> Int in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                register(continuation, id: id)
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
    }

    private func register(_ continuation: CheckedContinuation<LostReason, Error>, id: Int) {
        enum Outcome { case fired(LostReason), cancelled, waiting }
        let outcome = state.withLockedValue { state -> Outcome in
            if let reason = state.reason { return .fired(reason) }
            // The cancel handler may have run before this registration: it
            // found nothing to resume, so the check falls to us.
            if Task.isCancelled { return .cancelled }
            state.waiters[id] = continuation
            return .waiting
        }
        switch outcome {
        case .fired(let reason): continuation.resume(returning: reason)
        case .cancelled: continuation.resume(throwing: CancellationError())
        case .waiting: break
        }
    }
}
