import LDLMCore
import LDLMGRPC
import LDLMHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS

/// One client connection: its HTTP/2 session, its lock session and its keepalive.
///
/// Runs on the server's single event loop, like the ``LockTable`` it shares
/// with every other connection, so a grant made while serving one connection
/// is written to another directly, with no locking and no race.
final class LDLMConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let grpc: GRPCServerConnection
    private let service: LDLMService
    private let config: ServerConfig
    private let expiryScheduler: ExpiryScheduler
    private let outputBuffer: SharedOutputBuffer
    private var logger: Logger
    private var context: ChannelHandlerContext?
    private var session: SessionID?
    private var calls = StreamIDMap<PendingCall>()
    private var keepaliveTask: RepeatedTask?
    private var keepaliveDeadline: Scheduled<Void>?
    private var handshakeDeadline: Scheduled<Void>?
    /// True while a flush is certain to run before control returns to the event
    /// loop, so responses produced meanwhile are batched into it.
    private var flushPending = false

    /// A call that has not reached the end of its stream yet.
    private struct PendingCall {
        var ticket: WaitTicket?
        var deadline: Scheduled<Void>?
        var grant: LDLMService.Grant?
    }

    init(
        grpc: GRPCServerConnection,
        service: LDLMService,
        config: ServerConfig,
        expiryScheduler: ExpiryScheduler,
        outputBuffer: SharedOutputBuffer,
        logger: Logger
    ) {
        self.grpc = grpc
        self.service = service
        self.config = config
        self.expiryScheduler = expiryScheduler
        self.outputBuffer = outputBuffer
        self.logger = logger
    }

    // MARK: Channel events

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        if let remote = context.remoteAddress {
            logger[metadataKey: "remote"] = "\(remote.ipAddress ?? "?"):\(remote.port ?? 0)"
        }
        let session = service.table.openSession()
        self.session = session
        logger[metadataKey: "session"] = "\(session.rawValue)"
        logger.debug("connection opened")
        if config.usesTLS {
            let timeout = TimeAmount(config.handshakeTimeout)
            handshakeDeadline = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
                guard let self, let context = self.context else { return }
                self.logger.warning("TLS handshake timed out, closing connection")
                context.close(promise: nil)
            }
        }
        startKeepalive(context: context)
        flushOutput()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        flushPending = true
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(HTTP2Error) in try grpc.receive(bytes, onEvent: handle) }
        } catch {
            logger.info("closing connection after HTTP/2 protocol error", metadata: ["error": "\(error)"])
            flushOutput()
            context.close(promise: nil)
            return
        }
        flushOutput()
    }

    /// A client that sends requests but does not read the answers would make
    /// its unsent responses pile up here; reading from it pauses until its
    /// socket drains. Its keepalive PINGs then go unanswered, which ends it.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.autoRead, value: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        endSession()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted(let negotiatedProtocol) = event {
            handshakeDeadline?.cancel()
            handshakeDeadline = nil
            if let negotiatedProtocol, negotiatedProtocol != "h2" {
                logger.warning("refused TLS connection that negotiated \(negotiatedProtocol) instead of h2")
                context.close(promise: nil)
                return
            }
            if let certificate = try? context.pipeline.syncOperations.nioSSL_peerCertificate() {
                // Every later log line of this session names the verified client.
                logger[metadataKey: "client"] = "\(CertificateIdentity(certificate))"
            }
            logger.debug("TLS handshake completed")
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if handshakeDeadline != nil {
            // Still handshaking: a plaintext client, no or an untrusted client
            // certificate. Log the reason, never key material.
            logger.warning("refused TLS handshake", metadata: ["error": "\(error)"])
        } else {
            logger.debug("connection error", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }

    // MARK: Calls

    private func handle(_ event: GRPCServerEvent) {
        switch event {
        case .request(let request):
            serve(request)
        case .requestEnded(let streamID, let responseDelivered):
            requestEnded(streamID: streamID, responseDelivered: responseDelivered)
        case .pingAcknowledged:
            keepaliveDeadline?.cancel()
            keepaliveDeadline = nil
        case .goAway:
            logger.debug("client sent GOAWAY")
        }
    }

    private func serve(_ request: GRPCRequest) {
        guard let session else { return }
        let streamID = request.streamID
        // Only a `Lock` that queues calls this, so only it pays for a closure
        // and a weak reference; the capture list is on the inner closure for
        // that reason (on the outer one it would run for every call).
        let outcome = service.handle(request, session: session) {
            { [weak self] reply, grant in
                self?.complete(streamID: streamID, reply: reply, grant: grant)
            }
        }
        switch outcome {
        case .reply(let reply, let grant):
            calls[streamID] = PendingCall(grant: grant)
            grpc.sendResponse(streamID: streamID, prefixedMessage: reply)
        case .failure(let status):
            if status.code == .unauthenticated {
                logger.warning("refused call without a valid password", metadata: ["path": "\(request.path)"])
            }
            grpc.sendStatus(streamID: streamID, status)
        case .waiting(let ticket):
            var call = PendingCall(ticket: ticket)
            if let timeout = request.timeoutNanoseconds, let context {
                call.deadline = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(clamping: timeout))) { [weak self] () -> Void in
                    self?.deadlineExpired(streamID: streamID)
                }
            }
            calls[streamID] = call
        }
    }

    /// The reply to a queued `Lock`: granted or timed out.
    private func complete(streamID: Int32, reply: [UInt8], grant: LDLMService.Grant?) {
        calls[streamID]?.ticket = nil
        calls[streamID]?.deadline?.cancel()
        calls[streamID]?.deadline = nil
        calls[streamID]?.grant = grant
        grpc.sendResponse(streamID: streamID, prefixedMessage: reply)
        if !flushPending {
            flushOutput()
        }
    }

    private func deadlineExpired(streamID: Int32) {
        guard let ticket = calls[streamID]?.ticket, service.table.cancelWait(ticket) else { return }
        calls[streamID]?.ticket = nil
        grpc.sendStatus(streamID: streamID, GRPCStatus(.deadlineExceeded, "deadline exceeded while waiting for the lock"))
        flushOutput()
    }

    private func requestEnded(streamID: Int32, responseDelivered: Bool) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        call.deadline?.cancel()
        if let ticket = call.ticket {
            // Reset by the client while queued: it must never be granted.
            service.table.cancelWait(ticket)
        }
        if !responseDelivered, let grant = call.grant {
            // Nobody received this key, so nobody could ever unlock it.
            try? service.table.unlock(name: grant.name, key: grant.key.description)
            logger.debug("released a grant whose response was not delivered", metadata: ["lock": "\(grant.name)"])
        }
    }

    // MARK: Output

    /// Writes everything nghttp2 has ready, handling the stream closes that
    /// sending causes (which may queue more responses) until nothing is left.
    /// Every read ends here, so this is also where the expiry timer catches up
    /// with leases and waits the calls since the last flush added.
    private func flushOutput() {
        guard let context else { return }
        flushPending = true
        defer {
            flushPending = false
            expiryScheduler.reschedule()
        }
        var buffer = outputBuffer.borrow(allocator: context.channel.allocator)
        defer { outputBuffer.giveBack(buffer) }
        do {
            try grpc.drainOutput({ buffer.writeBytes($0) }, onEvent: handle)
        } catch {
            logger.error("HTTP/2 session failed to produce output", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        if !grpc.http2.isActive {
            context.close(promise: nil)
        }
    }

    // MARK: Keepalive

    private func startKeepalive(context: ChannelHandlerContext) {
        let interval = config.keepaliveInterval.nanosecondsClamped
        guard interval > 0 else { return }
        let period = TimeAmount.nanoseconds(interval)
        keepaliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { [weak self] _ in
            self?.sendKeepalivePing()
        }
    }

    private func sendKeepalivePing() {
        guard let context, keepaliveDeadline == nil else { return }
        do {
            try grpc.http2.sendPing()
        } catch {
            context.close(promise: nil)
            return
        }
        let timeout = TimeAmount(config.keepaliveTimeout)
        keepaliveDeadline = context.eventLoop.scheduleTask(in: timeout) { [weak self] () -> Void in
            guard let self, let context = self.context else { return }
            self.logger.warning("keepalive timeout: no PING ACK, closing connection")
            context.close(promise: nil)
        }
        flushOutput()
    }

    // MARK: Teardown

    private func endSession() {
        handshakeDeadline?.cancel()
        handshakeDeadline = nil
        keepaliveTask?.cancel()
        keepaliveTask = nil
        keepaliveDeadline?.cancel()
        keepaliveDeadline = nil
        for call in calls.values {
            call.deadline?.cancel()
            if let ticket = call.ticket {
                service.table.cancelWait(ticket)
            }
        }
        calls.removeAll()
        guard let session else { return }
        self.session = nil
        let held = service.table.heldLockCount(session: session)
        service.table.closeSession(session, releasingLocks: config.clearOnDisconnect)
        expiryScheduler.reschedule()
        if config.clearOnDisconnect {
            logger.info("connection closed", metadata: ["released_locks": "\(held)"])
        } else {
            logger.info("connection closed", metadata: ["kept_locks": "\(held)"])
        }
        context = nil
    }
}
