import GoDuration
import NIOCore
import NIOTLS

/// Closes a connection whose client stalls (``ClientStallStateMachine``):
/// one that has not sent its whole HTTP/2 preface within the preface timeout
/// of its start (of the end of its TLS handshake, with TLS), or that ends a
/// read inside a header block and does not finish it within the same time.
/// Costs a read that ends between frames one scan of its frame headers.
final class ClientStallHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var state = ClientStallStateMachine()
    private let timeout: TimeAmount
    private let startsAfterTLSHandshake: Bool
    private let connection: ConnectionContext
    private var timeoutTask: Scheduled<Void>?

    init(timeout: TimeAmount, startsAfterTLSHandshake: Bool, connection: ConnectionContext) {
        self.timeout = timeout
        self.startsAfterTLSHandshake = startsAfterTLSHandshake
        self.connection = connection
    }

    func channelActive(context: ChannelHandlerContext) {
        if !startsAfterTLSHandshake { startTimer(context: context) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if startsAfterTLSHandshake, case TLSUserEvent.handshakeCompleted(_) = event {
            startTimer(context: context)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unwrapInboundIn(data).withUnsafeReadableBytes { state.received($0) }
        if state.debt == nil {
            timeoutTask?.cancel()
            timeoutTask = nil
        } else if timeoutTask == nil {
            startTimer(context: context)
        }
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        timeoutTask?.cancel()
        timeoutTask = nil
        context.fireChannelInactive()
    }

    /// The timer runs until a read leaves nothing owed; progress in between
    /// does not restart it, so trickling a header block in does not help.
    private func startTimer(context: ChannelHandlerContext) {
        guard timeoutTask == nil else { return }
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
            guard let self else { return }
            self.timeoutTask = nil
            guard let debt = self.state.debt else { return }
            let what = debt == .preface ? "the HTTP/2 connection preface" : "a header block"
            let limit = formatGoDuration(UInt64(self.timeout.nanoseconds))
            self.connection.logger.warning("closing connection that did not finish \(what) within \(limit) (preface_timeout)")
            context.close(promise: nil)
        }
    }
}
