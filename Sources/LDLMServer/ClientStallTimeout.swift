import GoDuration
import NIOCore
import NIOTLS

/// Closes a connection whose client stalls (``ClientStallStateMachine``):
/// one that has not sent its whole HTTP/2 preface within the preface timeout
/// of its start (of the end of its TLS handshake, with TLS), or that ends a
/// read inside a header block and does not finish it within the same time.
///
/// Driven by ``GRPCConnectionHandler``, which sees every read anyway: a
/// handler of its own would cost each read a pipeline hop.
final class ClientStallTimeout {
    private var state = ClientStallStateMachine()
    private let timeout: TimeAmount
    private let startsAfterTLSHandshake: Bool
    private let connection: ConnectionContext
    private let metrics: ServerMetrics?
    private var timeoutTask: Scheduled<Void>?

    init(timeout: TimeAmount, startsAfterTLSHandshake: Bool, connection: ConnectionContext, metrics: ServerMetrics?) {
        self.timeout = timeout
        self.startsAfterTLSHandshake = startsAfterTLSHandshake
        self.connection = connection
        self.metrics = metrics
    }

    func channelActive(context: ChannelHandlerContext) {
        if !startsAfterTLSHandshake { startTimer(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if startsAfterTLSHandshake, case TLSUserEvent.handshakeCompleted(_) = event {
            startTimer(context: context)
        }
    }

    func received(_ bytes: UnsafeRawBufferPointer) {
        state.received(bytes)
    }

    /// The timer runs until a read leaves nothing owed; progress in between
    /// does not restart it, so trickling a header block in does not help.
    func readEnded(context: ChannelHandlerContext) {
        if state.debt == nil {
            if let timeoutTask {
                timeoutTask.cancel()
                self.timeoutTask = nil
            }
        } else {
            startTimer(context: context)
        }
    }

    func channelInactive() {
        timeoutTask?.cancel()
        timeoutTask = nil
    }

    private func startTimer(context: ChannelHandlerContext) {
        guard timeoutTask == nil else { return }
        timeoutTask = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
            guard let self else { return }
            self.timeoutTask = nil
            guard let debt = self.state.debt else { return }
            let what = debt == .preface ? "the HTTP/2 connection preface" : "a header block"
            let limit = formatGoDuration(UInt64(self.timeout.nanoseconds))
            self.metrics?.limitRefused(.prefaceTimeout)
            self.connection.logger.warning("closing connection that did not finish \(what) within \(limit) (preface_timeout)")
            context.close(promise: nil)
        }
    }
}
