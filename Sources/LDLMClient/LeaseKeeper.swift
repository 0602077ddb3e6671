import LDLMGRPC
import LDLMProtocol
import NIOCore

/// Keeps one hold's lease alive: renews it at about a third of the lease, and
/// ends the hold when a renew fails, the lease runs out here first, or the
/// session drops. Confined to the session's event loop.
final class LeaseKeeper: @unchecked Sendable {
    let name: String
    let key: String
    let eventLoop: EventLoop
    let signal = LostSignal()
    private let session: Session
    private var lease: TimeAmount
    private let driftAllowance: Double
    /// When the latest grant or renew the server accepted was sent. The server
    /// counts the lease from when it got that request, later than this, so a
    /// deadline counted from here never outlives the server's.
    private var grantSentAt: NIODeadline
    private var endReason: LostReason?
    private var renewTask: Scheduled<Void>?
    private var expiryTask: Scheduled<Void>?

    init(name: String, key: String, session: Session, lease: TimeAmount, driftAllowance: Double, sentAt: NIODeadline) {
        self.name = name
        self.key = key
        self.eventLoop = session.connection.eventLoop
        self.session = session
        self.lease = lease
        self.driftAllowance = driftAllowance
        self.grantSentAt = sentAt
    }

    /// Starts renewing; the hold ends at once if its session already has.
    func start() {
        session.adopt(self)
        if endReason == nil { scheduleTimers() }
    }

    private func scheduleTimers() {
        renewTask?.cancel()
        expiryTask?.cancel()
        let usable = Double(lease.nanoseconds) * (1 - driftAllowance)
        expiryTask = eventLoop.scheduleTask(deadline: grantSentAt + .nanoseconds(Int64(usable))) {
            self.end(.leaseExpired)
        }
        // Jitter keeps holds taken together from renewing together.
        let renewAfter = Double(lease.nanoseconds) / 3 * Double.random(in: 0.9...1.1)
        renewTask = eventLoop.scheduleTask(deadline: grantSentAt + .nanoseconds(Int64(renewAfter))) {
            self.renew(lease: nil) { _ in }
        }
    }

    /// Renews now; `newLease` (whole seconds) also becomes the lease of later renews.
    func renew(lease newLease: TimeAmount?, completion: @escaping (Result<Void, LDLMClientError>) -> Void) {
        if let endReason {
            return completion(.failure(.lockLost(endReason)))
        }
        let lease = newLease ?? self.lease
        let sentAt = NIODeadline.now()
        let request = RenewRequest(name: name, key: key, lockTimeoutSeconds: Int32(lease.nanoseconds / 1_000_000_000))
        session.connection.renew(request) { result in
            let outcome = Self.outcome(result)
            switch outcome {
            case .success: self.renewed(sentAt: sentAt, lease: lease)
            case .failure(let error): self.end(self.session.connection.closeReason.map(LostReason.connectionLost) ?? .renewFailed(error))
            }
            completion(outcome)
        }
    }

    private func renewed(sentAt: NIODeadline, lease: TimeAmount) {
        // An older renew answered late says nothing about the newer one.
        guard endReason == nil, sentAt >= grantSentAt else { return }
        grantSentAt = sentAt
        self.lease = lease
        scheduleTimers()
    }

    /// Stops renewing and unlocks. A hold whose session ended needs no unlock:
    /// the server released it with the session.
    func release(completion: @escaping (Result<Void, LDLMClientError>) -> Void) {
        switch endReason {
        case .released?, .connectionLost?: return completion(.success(()))
        case .renewFailed?, .leaseExpired?, nil: break
        }
        end(.released)
        session.connection.unlock(UnlockRequest(name: name, key: key)) { result in
            switch result {
            case .failure(let status): completion(.failure(LDLMClientError(status)))
            case .success(let response): completion(response.outcome)
            }
        }
    }

    /// Ends the hold, keeping the first reason.
    func end(_ reason: LostReason) {
        guard endReason == nil else { return }
        endReason = reason
        renewTask?.cancel()
        expiryTask?.cancel()
        session.forget(self)
        signal.fire(reason)
    }

    private static func outcome(_ result: Result<LockResponse, GRPCStatus>) -> Result<Void, LDLMClientError> {
        switch result {
        case .failure(let status): return .failure(LDLMClientError(status))
        case .success(let response):
            if let error = response.error { return .failure(LDLMClientError(error)) }
            return response.locked ? .success(()) : .failure(.notLocked("server answered locked: false"))
        }
    }
}

extension UnlockResponse {
    var outcome: Result<Void, LDLMClientError> {
        if let error { return .failure(LDLMClientError(error)) }
        return unlocked ? .success(()) : .failure(.notLocked("server answered unlocked: false"))
    }
}
