import LDLMGRPC
import LDLMHTTP2
import NIOCore

/// The gRPC call layer of one connection: bytes in, calls routed to the
/// services, answers and HTTP/2 frames out.
///
/// The call state lives in ``GRPCServerConnection`` (one state per stream);
/// this handler adds only I/O: reading, one flush per read, the timer for the
/// earliest call deadline, the preface and header-block timeout
/// (``ClientStallTimeout``), and the commands ``ConnectionManagementHandler``
/// sends down (PING, GOAWAY). It tells that handler of PING ACKs and GOAWAYs.
///
/// On the owner loop it calls the services directly. On another loop
/// (`remote`) it hands each call to the owner through the loop's
/// ``OwnerLoopBridge`` and takes the owner's answers back from it; request
/// streams (reflection), which touch no lock state, are served here.
final class GRPCConnectionHandler: ChannelDuplexHandler, RPCAnswerSink, RemoteAnswerReceiver {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ConnectionEvent
    typealias OutboundIn = ConnectionCommand
    typealias OutboundOut = ByteBuffer

    private let grpc: GRPCServerConnection
    private let router: RPCRouter
    private let connection: ConnectionContext
    private let outputBuffer: SharedOutputBuffer
    private let stallTimeout: ClientStallTimeout
    private var context: ChannelHandlerContext?
    private var routes = RouteCache()
    private var deadlineTimer: (deadline: UInt64, task: Scheduled<Void>)?
    /// True while a flush is certain to run before control returns to the event
    /// loop, so answers produced meanwhile are batched into it.
    private var flushPending = false
    /// Nil unless the server keeps metrics: then every call is counted and
    /// timed when it ends.
    private let metrics: ServerMetrics?
    /// The calls answered later whose end the metrics still wait for: method
    /// index and arrival time. Empty without metrics.
    private var pendingCalls: [Int32: (method: Int, startedAt: UInt64)] = [:]
    /// Whether the socket takes our answers; while it does not, reads are
    /// held back (see ``read(context:)``).
    private var isWritable = true
    private var readHeld = false
    /// Set when the connection runs on another loop than the lock manager's.
    private let remote: RemoteSession?

    init(
        grpc: GRPCServerConnection,
        router: RPCRouter,
        connection: ConnectionContext,
        outputBuffer: SharedOutputBuffer,
        stallTimeout: ClientStallTimeout,
        remote: RemoteSession? = nil
    ) {
        self.grpc = grpc
        self.router = router
        self.connection = connection
        self.outputBuffer = outputBuffer
        self.stallTimeout = stallTimeout
        self.metrics = router.metrics
        self.remote = remote
        // The handler owns `grpc`, which never outlives it, so the closure
        // needs no counted reference back.
        grpc.admission = { [unowned(unsafe) self] streamID, path, headers in
            let route = self.routes.route(for: path, in: self.router)
            if let route, route.interceptors.isEmpty, route.acceptsLargeRequests { return nil }
            let request = GRPCRequest(streamID: streamID, path: path, headers: headers, timeoutNanoseconds: nil, message: [])
            return self.router.largeRequestRefusal(of: request, to: route, from: self.connection, onOwnerLoop: self.remote == nil)
        }
        remote?.receiver = self
    }

    /// Streams open and the newest one, for idleness checks.
    var activity: (openStreams: Int, lastStreamID: Int32) { (grpc.openStreamCount, grpc.lastStreamID) }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        stallTimeout.channelActive(context: context)
        flushOutput()
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        stallTimeout.userInboundEventTriggered(context: context, event: event)
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        flushPending = true
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(HTTP2Error) in
                stallTimeout.received(bytes)
                try grpc.receive(bytes, onEvent: handle)
            }
        } catch {
            connection.logger.info("closing connection after HTTP/2 protocol error", metadata: ["error": "\(error)"])
            flushOutput()
            context.close(promise: nil)
            return
        }
        stallTimeout.readEnded(context: context)
        flushOutput()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stallTimeout.channelInactive()
        deadlineTimer?.task.cancel()
        deadlineTimer = nil
        grpc.connectionClosed()
        self.context = nil
        context.fireChannelInactive()
    }

    /// A client that sends requests but does not read the answers would make
    /// them pile up here: reading from it pauses until its socket drains, and
    /// its keepalive PINGs then go unanswered, which ends it. Done here rather
    /// than by NIO's `BackPressureHandler`, which every read, write and flush
    /// of every call would pass through.
    func read(context: ChannelHandlerContext) {
        if isWritable {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        isWritable = context.channel.isWritable
        if !isWritable {
            context.flush()
        } else if readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .ping:
            do {
                try grpc.http2.sendPing()
            } catch {
                context.close(promise: nil)
            }
        case .drain(let status):
            // The lock manager has answered its waiters already; this covers
            // calls any other service deferred, and ends streaming calls,
            // which have sent what the drain changed (health NOT_SERVING).
            grpc.failDeferredCalls(status)
            grpc.closeGracefully()
        case .closeGracefully:
            grpc.closeGracefully()
        }
        promise?.succeed()
        flushOutput()
    }

    // MARK: Calls

    private func handle(_ event: GRPCServerEvent) {
        switch event {
        case .request(let request):
            serve(request)
        case .requestStream(let request):
            serveRequestStream(request)
        case .pingAcknowledged:
            context?.fireChannelRead(wrapInboundOut(.pingAcknowledged))
        case .goAway:
            connection.logger.debug("client sent GOAWAY")
        case .headerListTooLarge(let streamID, let limit):
            metrics?.limitRefused(.maxHeaderListBytes)
            connection.logger.warning(
                "reset a call whose header list is over the limit (max_header_list_bytes)",
                metadata: ["stream": "\(streamID)", "limit": "\(limit)"]
            )
        }
    }

    private func serve(_ request: GRPCRequest) {
        let streamID = request.streamID
        let route = routes.route(for: request.path, in: router)
        let method = route?.metricsIndex ?? ServerMetrics.unknownMethod
        let startedAt = metrics == nil ? 0 : now
        if let remote {
            // Counted when the owner's answer comes back, as a deferred call is.
            if metrics != nil { pendingCalls[streamID] = (method, startedAt) }
            remote.send(.call(remote, request, route, deadline: deadline(of: request)))
            return
        }
        guard let session = connection.session else {
            let status = GRPCStatus(.unavailable, "connection is closing")
            callEnded(method, startedAt: startedAt, outcome: RPCOutcomeLabel.of(status.code))
            grpc.sendStatus(streamID: streamID, status)
            return
        }
        let outcome = router.route(request, to: route, from: connection, session: session) {
            RPCResponder(sink: self, streamID: streamID)
        }
        switch outcome {
        case .deferred(let cancel):
            let call = GRPCDeferredCall(deadline: deadline(of: request), cancel: pending(streamID, method, startedAt, cancel))
            grpc.deferAnswer(streamID: streamID, call)
            rescheduleDeadlineTimer()
        case .stream(let firstMessage, let cancel):
            let call = GRPCDeferredCall(deadline: deadline(of: request), cancel: pending(streamID, method, startedAt) {
                cancel()
                return true
            })
            grpc.beginStream(streamID: streamID, firstMessage: firstMessage, call)
            rescheduleDeadlineTimer()
        case .reply(let message, let onUndelivered, let ldlmError):
            callEnded(method, startedAt: startedAt, outcome: RPCOutcomeLabel.of(ldlmError))
            answer(streamID: streamID, with: .reply(message, onUndelivered: onUndelivered))
        case .failure(let status):
            callEnded(method, startedAt: startedAt, outcome: RPCOutcomeLabel.of(status.code))
            answer(streamID: streamID, with: .failure(status))
        }
    }

    private func serveRequestStream(_ request: GRPCRequest) {
        let streamID = request.streamID
        let method = metrics == nil ? ServerMetrics.unknownMethod : router.requestStreamMetricsIndex(request.path)
        let startedAt = metrics == nil ? 0 : now
        // A remote connection's session is open, or opening, while it reads.
        guard remote != nil || connection.session != nil else {
            let status = GRPCStatus(.unavailable, "connection is closing")
            callEnded(method, startedAt: startedAt, outcome: RPCOutcomeLabel.of(status.code))
            grpc.sendStatus(streamID: streamID, status)
            return
        }
        let responder = RPCResponder(sink: self, streamID: streamID)
        switch router.routeRequestStream(request, from: connection, responder: responder) {
        case .success(let handler):
            // Counted when its status goes out through ``answer(streamID:with:)``,
            // or when the gRPC layer withdraws it, as a streaming call is.
            let call = GRPCDeferredCall(deadline: deadline(of: request), cancel: pending(streamID, method, startedAt) {
                handler.cancel()
                return true
            })
            grpc.acceptRequestStream(streamID: streamID, GRPCRequestStreamReceiver(call: call, receive: handler.receive, clientEnded: handler.clientEnded))
            rescheduleDeadlineTimer()
        case .failure(let status):
            callEnded(method, startedAt: startedAt, outcome: RPCOutcomeLabel.of(status.code))
            grpc.sendStatus(streamID: streamID, status)
        }
    }

    /// The event loop's clock, as deadlines use it.
    private var now: UInt64 {
        context?.eventLoop.now.uptimeNanoseconds ?? 0
    }

    /// Counts a call that ended, if the server keeps metrics.
    private func callEnded(_ method: Int, startedAt: UInt64, outcome: Int) {
        metrics?.rpcEnded(method: method, outcome: outcome, nanoseconds: now &- startedAt)
    }

    /// With metrics, remembers a call answered later and returns a `cancel`
    /// that counts its end when the gRPC layer withdraws it; `cancel` as it
    /// is without.
    private func pending(_ streamID: Int32, _ method: Int, _ startedAt: UInt64, _ cancel: @escaping () -> Bool) -> () -> Bool {
        guard metrics != nil else { return cancel }
        pendingCalls[streamID] = (method, startedAt)
        // The gRPC connection that calls it never outlives this handler.
        return { [unowned(unsafe) self] in
            let withdrawn = cancel()
            // The status the gRPC layer answers it with, or CANCELLED when the client reset it or left.
            if withdrawn { self.pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(self.grpc.withdrawalStatus ?? .cancelled)) }
            return withdrawn
        }
    }

    private func pendingCallEnded(_ streamID: Int32, outcome: Int) {
        guard let call = pendingCalls.removeValue(forKey: streamID) else { return }
        callEnded(call.method, startedAt: call.startedAt, outcome: outcome)
    }

    private func deadline(of request: GRPCRequest) -> UInt64? {
        request.timeoutNanoseconds.map(now.addingClamped)
    }

    /// Sends an answer, now or for a deferred call, or a streaming call's message.
    func answer(streamID: Int32, with answer: RPCAnswer) {
        switch answer {
        case .reply(let message, let onUndelivered, let ldlmError):
            guard grpc.sendResponse(streamID: streamID, prefixedMessage: message, onUndelivered: onUndelivered) else {
                onUndelivered?()
                return
            }
            if !pendingCalls.isEmpty { pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(ldlmError)) }
        case .failure(let status):
            if !pendingCalls.isEmpty { pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(status.code)) }
            grpc.sendStatus(streamID: streamID, status)
        case .message(let message):
            grpc.sendMessage(streamID: streamID, prefixedMessage: message)
        }
        if !flushPending {
            // An answer from outside a read (a grant another connection's
            // unlock made, a timer) arrives while the lock table delivers it:
            // closing now would end this session inside that delivery.
            flushOutput(closingLater: true)
        }
    }

    // MARK: Answers from the owner loop

    /// What the owner made of a call this connection handed it.
    func receiveFromOwner(streamID: Int32, _ answer: RemoteAnswer) {
        guard let remote else { return }
        if !flushPending {
            // One flush for all the owner's batch brought this connection.
            flushPending = true
            remote.bridge.flushAfterDeliveries(self)
        }
        switch answer {
        case .answer(.reply(let message, let onUndelivered, let ldlmError)):
            // An undo runs on the owner, whatever undelivered the answer here.
            let undo = onUndelivered.map { undo in { remote.send(.undo(undo)) } }
            if !grpc.isAwaitingResponse(streamID), !pendingCalls.isEmpty {
                pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(.cancelled))
            }
            self.answer(streamID: streamID, with: .reply(message, onUndelivered: undo, ldlmError: ldlmError))
        case .answer(let other):
            self.answer(streamID: streamID, with: other)
        case .deferred(let deadline):
            guard grpc.isAwaitingResponse(streamID) else {
                // Reset or gone while the owner served it.
                remote.send(.cancel(remote, streamID: streamID, withdrawal: nil, answersWithdrawal: true))
                return
            }
            grpc.deferAnswer(streamID: streamID, GRPCDeferredCall(deadline: deadline) { [unowned(unsafe) self] in
                // The owner answers with the withdrawal, or the answer it sent first arrives first.
                remote.send(.cancel(remote, streamID: streamID, withdrawal: self.grpc.withdrawal, answersWithdrawal: true))
                return false
            })
            rescheduleDeadlineTimer()
        case .stream(let firstMessage, let deadline):
            grpc.beginStream(streamID: streamID, firstMessage: firstMessage, GRPCDeferredCall(deadline: deadline) { [unowned(unsafe) self] in
                let withdrawal = self.grpc.withdrawal
                remote.send(.cancel(remote, streamID: streamID, withdrawal: withdrawal, answersWithdrawal: false))
                if !self.pendingCalls.isEmpty {
                    self.pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(withdrawal?.code ?? .cancelled))
                }
                return true
            })
            rescheduleDeadlineTimer()
        case .withdrawn(let status):
            if !pendingCalls.isEmpty { pendingCallEnded(streamID, outcome: RPCOutcomeLabel.of(status?.code ?? .cancelled)) }
            if let status { grpc.sendStatus(streamID: streamID, status) }
        }
    }

    func ownerDeliveriesEnded() {
        flushPending = false
        flushOutput()
    }

    // MARK: Deadlines

    private func rescheduleDeadlineTimer() {
        guard let context, let next = grpc.nextDeadline else { return }
        if let deadlineTimer {
            guard next < deadlineTimer.deadline else { return }
            deadlineTimer.task.cancel()
        }
        let task = context.eventLoop.scheduleTask(deadline: .uptimeNanoseconds(next)) { [weak self] () -> Void in
            guard let self, let context = self.context else { return }
            self.deadlineTimer = nil
            self.grpc.expireDeadlines(now: context.eventLoop.now.uptimeNanoseconds)
            self.rescheduleDeadlineTimer()
            self.flushOutput()
        }
        deadlineTimer = (next, task)
    }

    // MARK: Output

    /// Writes everything nghttp2 has ready, handling the stream closes that
    /// sending causes (which may queue more answers) until nothing is left.
    /// Closes the connection once HTTP/2 has nothing more to do (after a
    /// GOAWAY, when the calls taken before it are answered), at once or, with
    /// `closingLater`, once the current event-loop task is done.
    private func flushOutput(closingLater: Bool = false) {
        guard let context else { return }
        flushPending = true
        defer { flushPending = false }
        var buffer = outputBuffer.borrow(allocator: context.channel.allocator)
        defer { outputBuffer.giveBack(buffer) }
        do {
            try grpc.drainOutput({ buffer.writeBytes($0) }, onEvent: handle)
        } catch {
            connection.logger.error("HTTP/2 session failed to produce output", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !grpc.http2.isActive {
            if closingLater {
                let channel = context.channel
                context.eventLoop.execute { channel.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }
}

extension UInt64 {
    fileprivate func addingClamped(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
