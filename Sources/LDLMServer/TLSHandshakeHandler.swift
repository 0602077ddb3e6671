import NIOCore
import NIOSSL
import NIOTLS

/// TLS admission: closes a connection whose handshake does not finish within
/// the handshake timeout or that negotiates a protocol other than HTTP/2, and
/// records the verified client certificate's names for the connection's logs.
/// Sits right after `NIOSSLServerHandler`.
final class TLSHandshakeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var state = TLSHandshakeStateMachine()
    private let timeout: TimeAmount
    private let connection: ConnectionContext
    private var timeoutTask: Scheduled<Void>?

    init(timeout: TimeAmount, connection: ConnectionContext) {
        self.timeout = timeout
        self.connection = connection
    }

    func channelActive(context: ChannelHandlerContext) {
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
            guard let self, self.state.timeoutElapsed() else { return }
            self.connection.logger.warning("TLS handshake timed out, closing connection")
            context.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiatedProtocol) = event {
            timeoutTask?.cancel()
            timeoutTask = nil
            switch state.handshakeCompleted(negotiatedProtocol: negotiatedProtocol) {
            case .refuse(let reason):
                connection.logger.warning("\(reason)")
                context.close(promise: nil)
                return
            case .proceed:
                if let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() {
                    connection.clientAuthenticated(as: CertificateIdentity(certificate))
                }
                connection.logger.debug("TLS handshake completed")
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard state.errorCaught() else {
            context.fireErrorCaught(error)
            return
        }
        timeoutTask?.cancel()
        timeoutTask = nil
        // Log the reason, never key material.
        connection.logger.warning("refused TLS handshake", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        timeoutTask = nil
        context.fireChannelInactive()
    }
}
