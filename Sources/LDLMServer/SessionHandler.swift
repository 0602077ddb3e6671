import NIOCore

/// Session ownership: a connection is one lock session, opened when the
/// connection becomes active and ended when it closes, which withdraws its
/// waiting calls and releases its locks (unless the server keeps them).
final class SessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let manager: LockManager
    let connection: ConnectionContext

    init(manager: LockManager, connection: ConnectionContext) {
        self.manager = manager
        self.connection = connection
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        // A strong reference, dropped when the session closes: a weak one would
        // move the channel's reference count to a side table, and every retain
        // of the channel on the request path would take the slow path.
        connection.sessionOpened(manager.openSession(for: connection) { channel.close(promise: nil) })
        connection.logger.debug("connection opened")
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let session = connection.session {
            connection.sessionClosed()
            switch manager.closeSession(session) {
            case .released(let locks):
                connection.logger.info("connection closed", metadata: ["released_locks": "\(locks)"])
            case .kept(let locks):
                connection.logger.info("connection closed", metadata: ["kept_locks": "\(locks)"])
            }
        }
        context.fireChannelInactive()
    }
}
