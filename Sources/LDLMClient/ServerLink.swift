import LDLMGRPC
import NIOCore

/// One shard: its replicas and the connection to the one that is primary,
/// made on first use and made again after it drops. Confined to
/// ``eventLoop``: call everything there.
///
/// Connections go to the replica that last answered as primary; one that
/// cannot be reached sends the next attempt to the next replica in the list.
/// A standby refuses every call with UNAVAILABLE and an `ldlm-primary`
/// trailer naming the primary (empty when it knows none yet); only such a
/// refusal makes ``send(_:completion:)`` move there, or to the next replica,
/// and make the call again, since a refused call was never processed.
final class ServerLink: @unchecked Sendable {
    let eventLoop: EventLoop
    let backoff: LDLMClient.Backoff
    /// How long after a dropped connection a hold may be renewed on the
    /// (possibly new) primary before it counts as lost; nil with a single
    /// replica, where the server released the hold with the connection.
    let reclaimGrace: TimeAmount?
    private let replicas: [ConnectionOptions]
    /// Where the next connection goes.
    private var target: ConnectionOptions
    private var current: Session?
    /// Every connection not yet closed: after a GOAWAY the old one finishes
    /// its calls while `current` is a new one.
    private var open: [ObjectIdentifier: Session] = [:]
    /// Shared by every call that needs a connection while one is being made.
    private var connecting: EventLoopFuture<Session>?
    private(set) var isClosed = false

    /// A standby's trailer naming the primary.
    static let primaryHintKey = "ldlm-primary"

    init(replicas: [ConnectionOptions], backoff: LDLMClient.Backoff, reclaimGrace: TimeAmount?, eventLoop: EventLoop) {
        precondition(!replicas.isEmpty, "a shard needs a replica")
        self.replicas = replicas
        self.target = replicas[0]
        self.backoff = backoff
        self.reclaimGrace = replicas.count > 1 ? reclaimGrace : nil
        self.eventLoop = eventLoop
    }

    /// The open session, connecting (with backoff) when there is none.
    func session() -> EventLoopFuture<Session> {
        eventLoop.preconditionInEventLoop()
        if isClosed {
            return eventLoop.makeFailedFuture(LDLMClientError.clientClosed)
        }
        if let current, current.connection.isUsable {
            return eventLoop.makeSucceededFuture(current)
        }
        if let connecting {
            return connecting
        }
        let future = connect(failures: 0).flatMapThrowing { (connection, replica) in
            guard !self.isClosed else {
                connection.close(reason: "client closed")
                throw LDLMClientError.clientClosed
            }
            return self.adopt(connection, replica: replica)
        }
        connecting = future
        future.whenComplete { _ in self.connecting = nil }
        return future
    }

    typealias Start<Response> = (Session, @escaping (Result<Response, GRPCStatus>) -> Void) -> Void

    /// Makes a call on the primary: `start` begins it on a session (and may
    /// decline to, never calling back, e.g. once the caller cancelled; a call
    /// cancelled after it started must not call back either: its reset is no
    /// answer to act on).
    /// A call a standby refused is made again where the refusal points, up
    /// to `replicas.count + 1` times: enough to visit every replica and follow
    /// a hint given during a change of primary. Then it fails
    /// ``LDLMClientError/unavailable(_:)``. `completion` gets the session that
    /// answered and when the answered request was sent.
    func send<Response>(
        _ start: @escaping Start<Response>,
        completion: @escaping (Result<(session: Session, response: Response, sentAt: NIODeadline), LDLMClientError>) -> Void
    ) {
        send(start, refusals: 0, completion: completion)
    }

    private func send<Response>(
        _ start: @escaping Start<Response>,
        refusals: Int,
        completion: @escaping (Result<(session: Session, response: Response, sentAt: NIODeadline), LDLMClientError>) -> Void
    ) {
        session().whenComplete { result in
            switch result {
            case .failure(let error):
                completion(.failure(error as? LDLMClientError ?? .unavailable("\(error)")))
            case .success(let session):
                let sentAt = NIODeadline.now()
                start(session) { result in
                    switch result {
                    case .success(let response):
                        completion(.success((session, response, sentAt)))
                    case .failure(let status):
                        guard self.isRefusal(status, on: session) else {
                            return completion(.failure(LDLMClientError(status)))
                        }
                        guard refusals < self.replicas.count + 1 else {
                            return completion(.failure(.unavailable("no primary found after \(refusals + 1) refusals; last: \(status.message)")))
                        }
                        self.redirect(from: session, after: status, refusals: refusals + 1).whenSuccess {
                            self.send(start, refusals: refusals + 1, completion: completion)
                        }
                    }
                }
            }
        }
    }

    /// A standby's answer: UNAVAILABLE carrying the `ldlm-primary` trailer,
    /// empty when the standby knows no primary yet. Also any UNAVAILABLE of a
    /// call on a connection already known to lead to a standby (closed by
    /// ``redirect(from:after:refusals:)`` under it). None of these calls was
    /// processed. Nothing else is: not a bare UNAVAILABLE, not a stream reset
    /// (a call cancelled here, or one cut off with its connection), which may
    /// follow a call the server acted on and says nothing about the replica
    /// being a standby. Taking one for a refusal would close the connection
    /// to the primary and with it every hold on it.
    private func isRefusal(_ status: GRPCStatus, on session: Session) -> Bool {
        guard status.code == .unavailable else { return false }
        return session.isStandby || status.trailingMetadata[Self.primaryHintKey] != nil
    }

    /// Leaves a standby for the primary it names, or for the next replica
    /// when it names none (an empty hint). Followed even to an address not in the
    /// configuration: the servers advertise their own addresses, so a replica
    /// set changed since the client was configured is still found. Completes
    /// when the next attempt may start: at once to a named primary, else
    /// after a backoff delay that grows with each refusal, so standbys that
    /// are still electing a primary are not hammered.
    private func redirect(from session: Session, after status: GRPCStatus, refusals: Int) -> EventLoopFuture<Void> {
        // Later refusals on the same connection find the target moved already.
        guard !session.isStandby else { return eventLoop.makeSucceededVoidFuture() }
        session.isStandby = true
        if current === session { current = nil }
        session.connection.close(reason: "\(session.replica.authority) is a standby")
        if let hint = status.trailingMetadata[Self.primaryHintKey], let primary = options(for: hint) {
            target = primary
            return eventLoop.makeSucceededVoidFuture()
        }
        if target.authority == session.replica.authority {
            target = replica(after: session.replica)
        }
        return eventLoop.scheduleTask(in: backoff.delay(afterFailures: refusals)) {}.futureResult
    }

    /// Closes the connection; every lock held on it is reported lost.
    func close() -> EventLoopFuture<Void> {
        eventLoop.preconditionInEventLoop()
        isClosed = true
        let closed = open.values.map { session in
            session.connection.close(reason: "client closed")
            return session.connection.channel.closeFuture
        }
        return EventLoopFuture.andAllComplete(closed, on: eventLoop)
    }

    /// Tries every replica in turn, from `target`, `backoff.attempts` rounds,
    /// waiting the backoff delay after each round.
    private func connect(failures: Int) -> EventLoopFuture<(LDLMClientConnection, ConnectionOptions)> {
        let replica = target
        return LDLMClientConnection.connect(replica, group: eventLoop).map { ($0, replica) }.flatMapError { error in
            let failures = failures + 1
            guard failures < self.backoff.attempts * self.replicas.count, !self.isClosed else {
                let addresses = self.replicas.map(\.authority).joined(separator: ", ")
                return self.eventLoop.makeFailedFuture(
                    LDLMClientError.unavailable("cannot connect to \(addresses) (\(failures) attempts): \(error)")
                )
            }
            if self.target.authority == replica.authority {
                self.target = self.replica(after: replica)
            }
            let rounds = failures / self.replicas.count
            guard failures % self.replicas.count == 0 else { return self.connect(failures: failures) }
            return self.eventLoop.flatScheduleTask(in: self.backoff.delay(afterFailures: rounds)) {
                self.connect(failures: failures)
            }.futureResult
        }
    }

    /// The replica listed after `replica`; the first for an address not listed.
    private func replica(after replica: ConnectionOptions) -> ConnectionOptions {
        guard let index = replicas.firstIndex(where: { $0.authority == replica.authority }) else { return replicas[0] }
        return replicas[(index + 1) % replicas.count]
    }

    /// How to reach a hinted address: as a listed replica, or with their settings.
    /// nil for a hint that is not host:port.
    private func options(for address: String) -> ConnectionOptions? {
        guard let (host, port) = try? ConnectionSetup.parse(address) else { return nil }
        var options = replicas[0]
        options.host = host
        options.port = port
        return replicas.first(where: { $0.authority == options.authority }) ?? options
    }

    private func adopt(_ connection: LDLMClientConnection, replica: ConnectionOptions) -> Session {
        let session = Session(connection: connection, replica: replica)
        current = session
        open[ObjectIdentifier(session)] = session
        connection.channel.closeFuture.whenComplete { _ in
            if self.current === session { self.current = nil }
            self.open.removeValue(forKey: ObjectIdentifier(session))
            let reason = connection.closeReason ?? "connection closed"
            for keeper in session.ended(reason: reason) {
                keeper.connectionDropped(reason: reason)
            }
        }
        return session
    }
}

/// One connection, which is one server session, and the holds it carries:
/// they end with it, unless reclaimed on the next primary.
final class Session {
    let connection: LDLMClientConnection
    /// The replica connected to.
    let replica: ConnectionOptions
    /// Set when a call was refused: the replica is not the primary.
    fileprivate(set) var isStandby = false
    private var holds: [ObjectIdentifier: LeaseKeeper] = [:]
    private(set) var endReason: String?

    init(connection: LDLMClientConnection, replica: ConnectionOptions) {
        self.connection = connection
        self.replica = replica
    }

    /// Tracks a hold until it ends; one that arrives after the session ended is told at once.
    func adopt(_ keeper: LeaseKeeper) {
        if let endReason {
            return keeper.connectionDropped(reason: endReason)
        }
        holds[ObjectIdentifier(keeper)] = keeper
    }

    func forget(_ keeper: LeaseKeeper) {
        holds.removeValue(forKey: ObjectIdentifier(keeper))
    }

    /// The holds it carried, for the link to reclaim or end.
    fileprivate func ended(reason: String) -> [LeaseKeeper] {
        endReason = reason
        defer { holds.removeAll() }
        return Array(holds.values)
    }
}
