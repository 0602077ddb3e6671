import LDLMCore
import LDLMGRPC
import NIOCore

/// The way between one connection loop and the owner loop, whose
/// ``LockManager`` owns every lock.
///
/// Connections on the owner loop call the manager directly and never come
/// here. Those on another loop send what they want of the owner (a session
/// opened or closed, a call, a cancel, an undo) through ``send(_:)``: all the
/// loop's connections fill one batch during a tick, and its end hands the
/// batch to the owner in one `execute`. The owner's answers to this loop's
/// connections go back the same way: one batch per owner tick, one `execute`.
///
/// Both ways keep order: the owner serves a loop's requests in the order its
/// connections sent them, and a connection receives what the owner sent it in
/// the order the owner sent it. So a session closes after the calls its
/// connection made before closing, and a grant already on its way reaches
/// the connection before the withdrawal of anything that came after it.
final class OwnerLoopBridge {
    let owner: EventLoop
    let loop: EventLoop
    /// Used on the owner only.
    let manager: LockManager
    let router: RPCRouter
    /// Filled on ``loop``, taken by its end-of-tick hand-over.
    private var toOwner = HopBatch<OwnerRequest>()
    /// Filled on ``owner``.
    private var toLoop = HopBatch<LoopDelivery>()
    /// True while the owner serves a batch: answers collect until its end
    /// rather than each scheduling a hand-over.
    private var ownerServing = false
    /// On ``loop``: the connections a delivery batch answered, each flushed
    /// once when the batch is done.
    private var receiversToFlush: [RemoteAnswerReceiver] = []

    init(owner: EventLoop, loop: EventLoop, manager: LockManager, router: RPCRouter) {
        precondition(owner !== loop, "connections on the owner loop call the manager directly")
        self.owner = owner
        self.loop = loop
        self.manager = manager
        self.router = router
    }

    // MARK: Connection loop → owner

    /// On ``loop``: queues `request` for the owner's next batch.
    func send(_ request: OwnerRequest) {
        if toOwner.append(request) {
            loop.execute { self.handToOwner() }
        }
    }

    private func handToOwner() {
        let batch = toOwner.take()
        owner.execute { self.serve(batch) }
    }

    /// On the owner: serves a batch in order, then sends back at once what it answered.
    private func serve(_ batch: [OwnerRequest]) {
        ownerServing = true
        for request in batch {
            switch request {
            case .open(let session):
                session.open(manager: manager)
            case .identified(let session, let identity):
                session.ownerContext.clientAuthenticated(as: identity)
            case .call(let session, let request, let route, let deadline):
                session.serve(request, route: route, deadline: deadline, router: router)
            case .cancel(let session, let streamID, let withdrawal, let answersWithdrawal):
                session.cancel(streamID, withdrawal: withdrawal, answersWithdrawal: answersWithdrawal)
            case .undo(let undo):
                undo()
            case .busyQuery(let session):
                session.tellBusy(manager: manager)
            case .close(let session):
                session.close(manager: manager)
            }
        }
        ownerServing = false
        handToLoopNow()
    }

    // MARK: Owner → connection loop

    /// On the owner: queues `delivery` for this loop's next batch.
    func deliver(_ delivery: LoopDelivery) {
        if toLoop.append(delivery), !ownerServing {
            owner.execute { self.handToLoopNow() }
        }
    }

    /// On the owner: hands what is queued for this loop over now, so that
    /// what the caller sends the loop next (a drain) comes after it.
    func handToLoopNow() {
        guard !toLoop.isEmpty else { return }
        let batch = toLoop.take()
        loop.execute {
            for delivery in batch {
                delivery.run()
            }
            let receivers = self.receiversToFlush
            self.receiversToFlush = []
            for receiver in receivers {
                receiver.ownerDeliveriesEnded()
            }
        }
    }

    /// On ``loop``: `receiver` writes what the current deliveries gave it once they are done.
    func flushAfterDeliveries(_ receiver: RemoteAnswerReceiver) {
        receiversToFlush.append(receiver)
    }
}

/// What a connection on another loop asks of the owner.
enum OwnerRequest {
    /// The connection became active: open its lock session.
    case open(RemoteSession)
    /// Its TLS handshake found a client certificate.
    case identified(RemoteSession, CertificateIdentity)
    /// Serve a call, resolved to `route` on the connection's loop.
    case call(RemoteSession, GRPCRequest, RPCRouter.Route?, deadline: UInt64?)
    /// The gRPC layer withdrew a call: the client reset it or left
    /// (`withdrawal` nil), its deadline passed or the server drains.
    /// `answersWithdrawal` is false for a streaming call, which the
    /// connection has answered already.
    case cancel(RemoteSession, streamID: Int32, withdrawal: GRPCStatus?, answersWithdrawal: Bool)
    /// An answer never reached its client: undo its effect.
    case undo(() -> Void)
    /// Whether the session holds or waits for a lock, for the idle check.
    case busyQuery(RemoteSession)
    /// The connection closed: end its session.
    case close(RemoteSession)
}

/// What the owner sends a connection on another loop.
enum LoopDelivery {
    case sessionOpened(RemoteSession, SessionID)
    case answer(RemoteSession, streamID: Int32, RemoteAnswer)
    case busy(RemoteSession, Bool)
    /// An administrator ended the session, or a replica stepped down.
    case closeConnection(Channel)

    /// On the connection's loop.
    func run() {
        switch self {
        case .sessionOpened(let session, let id):
            session.connection.sessionOpened(id)
        case .answer(let session, let streamID, let answer):
            if let receiver = session.receiver {
                receiver.receiveFromOwner(streamID: streamID, answer)
            } else if case .answer(.reply(_, let undo?, _)) = answer {
                // The connection's handlers are gone: nobody received this grant.
                session.send(.undo(undo))
            }
        case .busy(let session, let busy):
            session.lastKnownBusy = busy
            session.busyQueryOutstanding = false
        case .closeConnection(let channel):
            channel.close(promise: nil)
        }
    }
}

/// How the owner answered a call from another loop.
enum RemoteAnswer {
    /// A reply, a status, or a streaming call's next message.
    case answer(RPCAnswer)
    /// The answer comes later: the call may be withdrawn meanwhile.
    case deferred(deadline: UInt64?)
    /// A server-streaming call begins.
    case stream(firstMessage: [UInt8]?, deadline: UInt64?)
    /// The owner withdrew the call the gRPC layer cancelled: answer it with
    /// `status`, or with nothing when its client reset it or left.
    case withdrawn(GRPCStatus?)
}

/// Takes the owner's answers on a connection's loop.
protocol RemoteAnswerReceiver: AnyObject {
    func receiveFromOwner(streamID: Int32, _ answer: RemoteAnswer)
    /// The deliveries in hand are done: write what they produced.
    func ownerDeliveriesEnded()
}

/// One connection on another loop than the owner's, as both sides know it.
///
/// Its connection-side half is used only on the connection's loop, its
/// owner-side half only on the owner; the bridge carries everything between.
final class RemoteSession: RPCAnswerSink {
    let bridge: OwnerLoopBridge

    // MARK: Connection side

    /// The connection's own context, confined to its loop.
    let connection: ConnectionContext
    /// The gRPC handler, set before the connection is active.
    weak var receiver: RemoteAnswerReceiver?
    /// The owner's latest answer to ``OwnerRequest/busyQuery(_:)``.
    var lastKnownBusy = false
    /// True from a ``OwnerRequest/busyQuery(_:)`` until its answer is in:
    /// meanwhile ``lastKnownBusy`` may predate a lock the session took since.
    var busyQueryOutstanding = false

    // MARK: Owner side

    /// What the owner's services, logs and admin listings see of the
    /// connection: a copy made when it became active, since the connection's
    /// own is confined to its loop.
    let ownerContext: ConnectionContext
    private let closeChannel: () -> Void
    private var session: SessionID?
    private var closed = false
    /// How to withdraw each call the owner answers later, by stream.
    private var pending: [Int32: () -> Bool] = [:]

    init(bridge: OwnerLoopBridge, connection: ConnectionContext, channel: Channel) {
        self.bridge = bridge
        self.connection = connection
        self.ownerContext = connection.copy()
        // A strong reference, dropped when the session closes, as for a
        // connection on the owner loop (see SessionHandler).
        closeChannel = { [bridge] in bridge.deliver(.closeConnection(channel)) }
    }

    /// On the connection's loop.
    func send(_ request: OwnerRequest) {
        bridge.send(request)
    }

    // MARK: On the owner

    func open(manager: LockManager) {
        let id = manager.openSession(for: ownerContext, close: closeChannel)
        session = id
        ownerContext.sessionOpened(id)
        bridge.deliver(.sessionOpened(self, id))
    }

    func serve(_ request: GRPCRequest, route: RPCRouter.Route?, deadline: UInt64?, router: RPCRouter) {
        let streamID = request.streamID
        guard !closed, let session else { return }
        let outcome = router.route(request, to: route, from: ownerContext, session: session) {
            RPCResponder(sink: self, streamID: streamID)
        }
        switch outcome {
        case .reply(let message, let onUndelivered, let ldlmError):
            bridge.deliver(.answer(self, streamID: streamID, .answer(.reply(message, onUndelivered: onUndelivered, ldlmError: ldlmError))))
        case .failure(let status):
            bridge.deliver(.answer(self, streamID: streamID, .answer(.failure(status))))
        case .deferred(let cancel):
            pending[streamID] = cancel
            bridge.deliver(.answer(self, streamID: streamID, .deferred(deadline: deadline)))
        case .stream(let firstMessage, let cancel):
            pending[streamID] = {
                cancel()
                return true
            }
            bridge.deliver(.answer(self, streamID: streamID, .stream(firstMessage: firstMessage, deadline: deadline)))
        }
    }

    /// A deferred or streaming call's answer, from the service that took it.
    func answer(streamID: Int32, with answer: RPCAnswer) {
        switch answer {
        case .reply(_, let onUndelivered, _):
            pending.removeValue(forKey: streamID)
            guard !closed else {
                onUndelivered?()
                return
            }
        case .failure:
            pending.removeValue(forKey: streamID)
            guard !closed else { return }
        case .message:
            guard !closed else { return }
        }
        bridge.deliver(.answer(self, streamID: streamID, .answer(answer)))
    }

    /// Withdraws a call the gRPC layer cancelled, unless its answer is on its
    /// way; a withdrawn call is answered with the status the gRPC layer chose.
    /// After the session closed it is still withdrawn (a held grant is
    /// undone), but nothing is sent.
    func cancel(_ streamID: Int32, withdrawal: GRPCStatus?, answersWithdrawal: Bool) {
        guard let cancel = pending.removeValue(forKey: streamID) else { return }
        if cancel(), answersWithdrawal, !closed {
            bridge.deliver(.answer(self, streamID: streamID, .withdrawn(withdrawal)))
        }
    }

    func tellBusy(manager: LockManager) {
        guard !closed, let session else { return }
        bridge.deliver(.busy(self, manager.isBusy(session)))
    }

    func close(manager: LockManager) {
        closed = true
        // After the session's end, as the gRPC layer withdraws a closing
        // connection's calls after it: a call whose start (a Watch's stream)
        // reached the connection once its handlers were gone has no one
        // there to withdraw it.
        defer { withdrawPending() }
        guard let session else { return }
        self.session = nil
        switch manager.closeSession(session) {
        case .released(let locks):
            ownerContext.logger.info("connection closed", metadata: ["released_locks": "\(locks)"])
        case .kept(let locks):
            ownerContext.logger.info("connection closed", metadata: ["kept_locks": "\(locks)"])
        }
    }

    /// Withdraws every call still pending; the connection's own cancels,
    /// which may follow, then find nothing.
    private func withdrawPending() {
        let calls = pending
        pending = [:]
        for cancel in calls.values {
            _ = cancel()
        }
    }
}
