import NIOCore
import NIOTLS

/// Session ownership: a connection is one lock session, opened when the
/// connection becomes active and ended when it closes, which withdraws its
/// waiting calls and releases its locks (unless the server keeps them).
///
/// On another loop than the owner's, the session opens and closes through
/// the connection's ``RemoteSession``, in order with its calls.
final class SessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let manager: LockManager
    let connection: ConnectionContext
    private let remote: RemoteSession?

    init(manager: LockManager, connection: ConnectionContext, remote: RemoteSession? = nil) {
        self.manager = manager
        self.connection = connection
        self.remote = remote
    }

    func channelActive(context: ChannelHandlerContext) {
        if let remote {
            remote.send(.open(remote))
        } else {
            let channel = context.channel
            // A strong reference, dropped when the session closes: a weak one would
            // move the channel's reference count to a side table, and every retain
            // of the channel on the request path would take the slow path.
            connection.sessionOpened(manager.openSession(for: connection) { channel.close(promise: nil) })
        }
        connection.logger.debug("connection opened")
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The owner's copy of the connection learns the client's identity
        // before any call of the connection reaches it.
        if let remote, case TLSUserEvent.handshakeCompleted = event, let identity = connection.clientIdentity {
            remote.send(.identified(remote, identity))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let remote {
            connection.sessionClosed()
            remote.send(.close(remote))
        } else if let session = connection.session {
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
