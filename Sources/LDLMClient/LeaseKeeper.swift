import LDLMGRPC
import LDLMProtocol
import NIOCore

/// Keeps one hold's lease alive: renews it at about a third of the lease, and
/// ends the hold when a renew fails, the lease runs out here first, or the
/// session drops and the hold cannot be reclaimed. Confined to the link's
/// event loop.
///
/// Reclaiming: when the shard has several replicas, the primary that takes
/// over keeps every hold of a dropped session for a grace period, for its
/// holder to renew with its key. So a drop starts renewing through the link
/// (which finds the primary) until that succeeds, the server refuses, or the
/// grace or the lease known here runs out.
final class LeaseKeeper: @unchecked Sendable {
    let name: String
    let key: String
    let eventLoop: EventLoop
    let signal = LostSignal()
    /// 0 when the server sends none.
    private let fencingToken: UInt64
    private let link: ServerLink
    /// The session holding the lock; a reclaim moves the hold to a new one.
    private var session: Session
    private let reclaimsAfterDrop: Bool
    private var lease: TimeAmount
    private let driftAllowance: Double
    /// When the latest grant or renew the server accepted was sent. The server
    /// counts the lease from when it got that request, later than this, so a
    /// deadline counted from here never outlives the server's.
    private var grantSentAt: NIODeadline
    private var endReason: LostReason?
    private var renewTask: Scheduled<Void>?
    private var expiryTask: Scheduled<Void>?
    /// Set while reclaiming: ends the hold when the grace runs out.
    private var graceTask: Scheduled<Void>?

    init(
        name: String,
        key: String,
        fencingToken: UInt64,
        link: ServerLink,
        session: Session,
        reclaimsAfterDrop: Bool,
        lease: TimeAmount,
        driftAllowance: Double,
        sentAt: NIODeadline
    ) {
        self.name = name
        self.key = key
        self.fencingToken = fencingToken
        self.eventLoop = link.eventLoop
        self.link = link
        self.session = session
        self.reclaimsAfterDrop = reclaimsAfterDrop
        self.lease = lease
        self.driftAllowance = driftAllowance
        self.grantSentAt = sentAt
    }

    /// Starts renewing; tells the hold at once if its session already ended.
    func start() {
        scheduleTimers()
        session.adopt(self)
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

    /// Renews now; `newLease` (whole seconds) also becomes the lease of later
    /// renews. While a reclaim is under way it fails as unavailable and the
    /// hold goes on: the reclaim is the renew.
    func renew(lease newLease: TimeAmount?, completion: @escaping (Result<Void, LDLMClientError>) -> Void) {
        if let endReason {
            return completion(.failure(.lockLost(endReason)))
        }
        guard graceTask == nil else {
            return completion(.failure(.unavailable("the connection dropped; the hold is being reclaimed")))
        }
        let lease = newLease ?? self.lease
        let sentAt = NIODeadline.now()
        let session = self.session
        let request = RenewRequest(name: name, key: key, lockTimeoutSeconds: Int32(lease.nanoseconds / 1_000_000_000))
        session.connection.renew(request) { result in
            let outcome = Self.outcome(result)
            switch outcome {
            case .success:
                self.renewed(sentAt: sentAt, lease: lease)
            case .failure(let error):
                if let reason = session.connection.closeReason {
                    self.connectionDropped(reason: reason)
                } else if case .unavailable(let message) = error, self.reclaims {
                    // A primary stepping down refuses before it closes.
                    self.connectionDropped(reason: message)
                } else {
                    self.end(.renewFailed(error))
                }
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

    private var reclaims: Bool { reclaimsAfterDrop && link.reclaimGrace != nil }

    /// The session holding the lock ended: reclaims the hold when the shard
    /// has replicas, else it is lost.
    func connectionDropped(reason: String) {
        guard endReason == nil, graceTask == nil else { return }
        guard reclaims, let grace = link.reclaimGrace, !link.isClosed else {
            return end(.connectionLost(reason))
        }
        // The expiry timer stays: the lease the old primary granted bounds
        // the hold until a reclaim renews it.
        renewTask?.cancel()
        session.forget(self)
        graceTask = eventLoop.scheduleTask(in: grace) {
            self.end(.connectionLost("\(reason); not reclaimed within \(grace.nanoseconds / 1_000_000) ms"))
        }
        reclaim(failures: 0)
    }

    private func reclaim(failures: Int) {
        let lease = self.lease
        let request = RenewRequest(name: name, key: key, lockTimeoutSeconds: Int32(lease.nanoseconds / 1_000_000_000))
        link.send({ session, done in session.connection.renew(request, completion: done) }) { result in
            switch result {
            case .success(let answer):
                guard self.endReason == nil else { return self.abandon(on: answer.session) }
                if let error = answer.response.error {
                    return self.end(.renewFailed(LDLMClientError(error)))
                }
                guard answer.response.locked else {
                    return self.end(.renewFailed(.notLocked("server answered locked: false")))
                }
                let token = answer.response.fencingToken
                guard self.fencingToken == 0 || token == 0 || token == self.fencingToken else {
                    self.end(.renewFailed(.unknown("reclaimed with fencing token \(token), held with \(self.fencingToken)")))
                    return self.abandon(on: answer.session)
                }
                self.graceTask?.cancel()
                self.graceTask = nil
                self.session = answer.session
                self.renewed(sentAt: answer.sentAt, lease: lease)
                answer.session.adopt(self)
            case .failure(.unavailable), .failure(.deadlineExceeded):
                guard self.endReason == nil else { return }
                self.eventLoop.scheduleTask(in: self.link.backoff.delay(afterFailures: failures + 1)) {
                    if self.endReason == nil { self.reclaim(failures: failures + 1) }
                }
            case .failure(.clientClosed):
                self.end(.connectionLost("client closed"))
            case .failure(let error):
                self.end(.renewFailed(error))
            }
        }
    }

    /// Unlocks a hold reclaimed after it had ended here, so that nobody waits
    /// for it until its lease runs out.
    private func abandon(on session: Session) {
        session.connection.unlock(UnlockRequest(name: name, key: key)) { _ in }
    }

    /// Stops renewing and unlocks. A hold whose session ended needs no unlock:
    /// the server released it with the session. One being reclaimed is
    /// unlocked by its key on the primary, which keeps it until its grace
    /// ends; so is one whose unlock was cut off with its connection.
    func release(completion: @escaping (Result<Void, LDLMClientError>) -> Void) {
        switch endReason {
        case .released?, .connectionLost?: return completion(.success(()))
        case .renewFailed?, .leaseExpired?, nil: break
        }
        let wasReclaiming = graceTask != nil
        end(.released)
        let request = UnlockRequest(name: name, key: key)
        guard !wasReclaiming else {
            return unlockOnPrimary(request, completion: completion)
        }
        let session = self.session
        session.connection.unlock(request) { result in
            switch result {
            case .failure where session.connection.closeReason != nil && self.reclaims:
                self.unlockOnPrimary(request) { retried in
                    // The first unlock may have gone through before the drop.
                    if case .failure(let error) = retried, error.saysNothingIsHeld { return completion(.success(())) }
                    completion(retried)
                }
            case .failure(let status): completion(.failure(LDLMClientError(status)))
            case .success(let response): completion(response.outcome)
            }
        }
    }

    private func unlockOnPrimary(_ request: UnlockRequest, completion: @escaping (Result<Void, LDLMClientError>) -> Void) {
        link.send({ session, done in session.connection.unlock(request, completion: done) }) { result in
            completion(result.flatMap { $0.response.outcome })
        }
    }

    /// Ends the hold, keeping the first reason.
    func end(_ reason: LostReason) {
        guard endReason == nil else { return }
        endReason = reason
        renewTask?.cancel()
        expiryTask?.cancel()
        graceTask?.cancel()
        graceTask = nil
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
