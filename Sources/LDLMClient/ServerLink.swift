import NIOCore

/// One server of the shard map and its connection, made on first use and made
/// again after it drops. Confined to ``eventLoop``: call everything there.
final class ServerLink: @unchecked Sendable {
    let eventLoop: EventLoop
    private let options: ConnectionOptions
    private let backoff: LDLMClient.Backoff
    private var current: Session?
    /// Every connection not yet closed: after a GOAWAY the old one finishes
    /// its calls while `current` is a new one.
    private var open: [ObjectIdentifier: Session] = [:]
    /// Shared by every call that needs a connection while one is being made.
    private var connecting: EventLoopFuture<Session>?
    private var isClosed = false

    init(options: ConnectionOptions, backoff: LDLMClient.Backoff, eventLoop: EventLoop) {
        self.options = options
        self.backoff = backoff
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
        let future = connect(failures: 0).flatMapThrowing { connection in
            guard !self.isClosed else {
                connection.close(reason: "client closed")
                throw LDLMClientError.clientClosed
            }
            return self.adopt(connection)
        }
        connecting = future
        future.whenComplete { _ in self.connecting = nil }
        return future
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

    private func connect(failures: Int) -> EventLoopFuture<LDLMClientConnection> {
        LDLMClientConnection.connect(options, group: eventLoop).flatMapError { error in
            guard failures + 1 < self.backoff.attempts, !self.isClosed else {
                let attempts = failures + 1
                return self.eventLoop.makeFailedFuture(
                    LDLMClientError.unavailable("cannot connect to \(self.options.authority) (\(attempts) attempts): \(error)")
                )
            }
            return self.eventLoop.flatScheduleTask(in: self.backoff.delay(afterFailures: failures + 1)) {
                self.connect(failures: failures + 1)
            }.futureResult
        }
    }

    private func adopt(_ connection: LDLMClientConnection) -> Session {
        let session = Session(connection: connection)
        current = session
        open[ObjectIdentifier(session)] = session
        connection.channel.closeFuture.whenComplete { _ in
            if self.current === session { self.current = nil }
            self.open.removeValue(forKey: ObjectIdentifier(session))
            session.ended(reason: connection.closeReason ?? "connection closed")
        }
        return session
    }
}

/// One connection, which is one server session, and the holds it carries:
/// they end with it.
final class Session {
    let connection: LDLMClientConnection
    private var holds: [ObjectIdentifier: LeaseKeeper] = [:]
    private(set) var endReason: String?

    init(connection: LDLMClientConnection) {
        self.connection = connection
    }

    /// Tracks a hold until it ends; one that arrives after the session ended ends at once.
    func adopt(_ keeper: LeaseKeeper) {
        if let endReason {
            return keeper.end(.connectionLost(endReason))
        }
        holds[ObjectIdentifier(keeper)] = keeper
    }

    func forget(_ keeper: LeaseKeeper) {
        holds.removeValue(forKey: ObjectIdentifier(keeper))
    }

    fileprivate func ended(reason: String) {
        endReason = reason
        let ending = holds.values
        holds.removeAll()
        for keeper in ending {
            keeper.end(.connectionLost(reason))
        }
    }
}
