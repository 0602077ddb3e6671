import LDLMGRPC
import NIOCore

/// Connection management: keepalive PINGs and their timeout, closing idle
/// connections, and draining when the server shuts down (on NIO's
/// `ChannelShouldQuiesceEvent`). Decisions come from
/// ``ConnectionManagementStateMachine``; this handler owns the timers and sends
/// ``ConnectionCommand``s down to the gRPC layer.
final class ConnectionManagementHandler: ChannelInboundHandler {
    typealias InboundIn = ConnectionEvent
    typealias OutboundOut = ConnectionCommand

    private var state: ConnectionManagementStateMachine
    private let connection: ConnectionContext
    private let metrics: ServerMetrics?
    private let activity: () -> ConnectionManagementStateMachine.Activity
    private var keepaliveTask: RepeatedTask?
    private var pingTimeout: Scheduled<Void>?
    private var idleTask: RepeatedTask?

    init(
        configuration: ConnectionManagementStateMachine.Configuration,
        connection: ConnectionContext,
        metrics: ServerMetrics?,
        activity: @escaping () -> ConnectionManagementStateMachine.Activity
    ) {
        self.state = ConnectionManagementStateMachine(configuration: configuration)
        self.connection = connection
        self.metrics = metrics
        self.activity = activity
    }

    func channelActive(context: ChannelHandlerContext) {
        if let interval = state.configuration.keepaliveInterval {
            let period = TimeAmount.nanoseconds(Int64(clamping: interval))
            keepaliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in
                self?.keepaliveIntervalElapsed(context: context)
            }
        }
        if let interval = state.idleCheckInterval {
            let period = TimeAmount.nanoseconds(Int64(clamping: interval))
            idleTask = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in
                self?.checkIdle(context: context)
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .pingAcknowledged:
            state.pingAcknowledged()
            pingTimeout?.cancel()
            pingTimeout = nil
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            if state.quiesce() {
                connection.logger.debug("draining connection")
                context.writeAndFlush(wrapOutboundOut(.drain(GRPCStatus(.unavailable, "server is shutting down"))), promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        connection.logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepaliveTask?.cancel()
        keepaliveTask = nil
        pingTimeout?.cancel()
        pingTimeout = nil
        idleTask?.cancel()
        idleTask = nil
        context.fireChannelInactive()
    }

    private func keepaliveIntervalElapsed(context: ChannelHandlerContext) {
        guard state.keepaliveIntervalElapsed() == .sendPing else { return }
        context.writeAndFlush(wrapOutboundOut(.ping), promise: nil)
        let timeout = TimeAmount.nanoseconds(Int64(clamping: state.configuration.keepaliveTimeout))
        pingTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
            guard let self, self.state.pingTimeoutElapsed() else { return }
            self.metrics?.keepaliveTimedOut()
            self.connection.logger.warning("keepalive timeout: no PING ACK, closing connection")
            context.close(promise: nil)
        }
    }

    private func checkIdle(context: ChannelHandlerContext) {
        guard state.idleCheck(activity(), now: context.eventLoop.now.uptimeNanoseconds) else { return }
        connection.logger.info("closing idle connection")
        idleTask?.cancel()
        idleTask = nil
        context.writeAndFlush(wrapOutboundOut(.closeGracefully), promise: nil)
    }
}
