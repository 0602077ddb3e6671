import LDLMHTTP2
import NIOCore
import NIOTLS

/// How a ``GRPCClientChannelHandler`` runs its connection.
public struct GRPCClientChannelOptions: Sendable {
    /// Sent on every call, before each call's own metadata.
    public var metadata: [HTTP2Header]
    /// Calls can flow once the TLS handshake is done, not at TCP connect.
    public var usesTLS: Bool
    /// Pings the server every `interval`; a PING not answered within
    /// `timeout` closes the connection, so a frozen server or a dead network
    /// path is noticed without waiting for TCP.
    public var keepalive: (interval: TimeAmount, timeout: TimeAmount)?
    /// Bounds TCP connect and TLS handshake (and the server's preface, when awaited) together.
    public var connectTimeout: TimeAmount
    /// Calls can flow only once the server's first HTTP/2 bytes (its SETTINGS)
    /// came in. A frozen server, whose kernel still accepts the TCP
    /// connection, or a TLS 1.3 server refusing the client's certificate after
    /// the client finished its handshake, then fails the connect, when
    /// nothing was sent yet, instead of failing calls that may have been read.
    public var waitsForServerPreface: Bool

    public init(
        metadata: [HTTP2Header] = [],
        usesTLS: Bool = false,
        keepalive: (interval: TimeAmount, timeout: TimeAmount)? = nil,
        connectTimeout: TimeAmount = .seconds(10),
        waitsForServerPreface: Bool = false
    ) {
        self.metadata = metadata
        self.usesTLS = usesTLS
        self.keepalive = keepalive
        self.connectTimeout = connectTimeout
        self.waitsForServerPreface = waitsForServerPreface
    }
}

/// Drives one ``GRPCClientConnection`` on a channel: starts calls, feeds reads,
/// writes output, sends keepalive PINGs and reports when the connection is ready.
/// Confined to its event loop: call it there; completions run there too.
public final class GRPCClientChannelHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private let grpc: GRPCClientConnection
    private let options: GRPCClientChannelOptions
    /// Succeeds once calls can flow (after TCP connect, the TLS handshake or
    /// the server's preface; see ``GRPCClientChannelOptions``), fails with ``GRPCConnectionClosedError`` if the connection closes first.
    public let ready: EventLoopPromise<Void>
    private var isReadyResolved = false
    /// Why the connection ended, for the errors of calls and lost locks.
    public private(set) var closeReason: String?
    /// The server said GOAWAY: calls in flight finish, new ones go elsewhere.
    public private(set) var receivedGoAway = false
    private var context: ChannelHandlerContext?
    private var calls = StreamIDMap<PendingCall>()
    private var flushPending = false
    /// Reused for every write: the socket usually takes it whole, leaving it
    /// uniquely ours again by the next flush.
    private var outputBuffer: ByteBuffer?
    private var keepaliveTask: RepeatedTask?
    private var pingTimeout: Scheduled<Void>?
    private var readyTimeout: Scheduled<Void>?

    private struct PendingCall {
        let completion: (GRPCResponse) -> Void
        /// Ends the call when the server has not answered by its timeout,
        /// which a frozen server never would.
        let deadline: Scheduled<Void>?
    }

    public init(grpc: GRPCClientConnection, options: GRPCClientChannelOptions, ready: EventLoopPromise<Void>) {
        self.grpc = grpc
        self.options = options
        self.ready = ready
    }

    public var isUsable: Bool { context != nil && !receivedGoAway }

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The bootstrap's timeout covers TCP only; this one covers the TLS handshake too.
        let timeout = options.connectTimeout
        readyTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            self?.close(reason: "connect timeout after \(timeout)")
        }
    }

    public func channelActive(context: ChannelHandlerContext) {
        flushOutput()
        if !options.usesTLS, !options.waitsForServerPreface { resolveReady(.success(())) }
        if let keepalive = options.keepalive {
            keepaliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: keepalive.interval, delay: keepalive.interval) { [weak self] _ in
                self?.sendPing(timeout: keepalive.timeout)
            }
        }
        context.fireChannelActive()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent, !options.waitsForServerPreface { resolveReady(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    private func resolveReady(_ result: Result<Void, Error>) {
        guard !isReadyResolved else { return }
        isReadyResolved = true
        readyTimeout?.cancel()
        ready.completeWith(result)
    }

    /// A channel that never connected gets no `channelInactive`, only this.
    public func handlerRemoved(context: ChannelHandlerContext) {
        resolveReady(.failure(GRPCConnectionClosedError(reason: closeReason ?? "connection closed")))
    }

    /// Starts a unary call and returns its stream ID (0 when it could not
    /// start). `metadata` goes after the connection's own. With a `timeout`
    /// the server is told it (`grpc-timeout`), and the call ends with
    /// DEADLINE_EXCEEDED when no answer came in time.
    @discardableResult
    public func call(
        path: String,
        prefixedMessage: [UInt8],
        metadata: [HTTP2Header] = [],
        timeout: TimeAmount? = nil,
        completion: @escaping (GRPCResponse) -> Void
    ) -> Int32 {
        guard let context else {
            // Nothing would ever flush or answer it.
            completion(Self.failure(streamID: 0, closeReason ?? "connection closed", mayHaveBeenProcessed: false))
            return 0
        }
        let streamID: Int32
        do {
            streamID = try grpc.startCall(
                path: path,
                prefixedMessage: prefixedMessage,
                metadata: metadata.isEmpty ? options.metadata : options.metadata + metadata,
                timeoutNanoseconds: timeout.map { UInt64(max($0.nanoseconds, 0)) }
            )
        } catch {
            completion(Self.failure(streamID: 0, "cannot start call: \(error)", mayHaveBeenProcessed: false))
            return 0
        }
        let deadline = timeout.map { timeout -> Scheduled<Void> in
            context.eventLoop.scheduleTask(in: timeout) { [weak self] in
                guard let self else { return }
                self.expire(streamID: streamID, after: timeout)
            }
        }
        calls[streamID] = PendingCall(completion: completion, deadline: deadline)
        if !flushPending {
            flushOutput()
        }
        return streamID
    }

    /// Resets the call's stream; the server withdraws it. Its completion still
    /// runs, with the response when that had already arrived.
    public func cancel(streamID: Int32) {
        guard streamID != 0, calls[streamID] != nil else { return }
        grpc.http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        if !flushPending {
            flushOutput()
        }
    }

    private func expire(streamID: Int32, after timeout: TimeAmount) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        call.completion(GRPCResponse(streamID: streamID, status: GRPCStatus(.deadlineExceeded, "no answer within \(timeout.nanoseconds / 1_000_000) ms"), message: nil))
        grpc.http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        if !flushPending {
            flushOutput()
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        flushPending = true
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(HTTP2Error) in try grpc.receive(bytes, onEvent: handle) }
            // nghttp2 refuses a first frame other than SETTINGS: bytes it took begin the server's preface.
            if options.waitsForServerPreface { resolveReady(.success(())) }
        } catch {
            close(reason: "HTTP/2 protocol error: \(error)")
        }
        flushOutput()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        let reason = closeReason ?? "connection closed by the server"
        closeReason = reason
        self.context = nil
        keepaliveTask?.cancel()
        pingTimeout?.cancel()
        resolveReady(.failure(GRPCConnectionClosedError(reason: reason)))
        let pending = calls
        calls.removeAll()
        for (streamID, call) in pending {
            call.deadline?.cancel()
            call.completion(Self.failure(streamID: streamID, reason, mayHaveBeenProcessed: true))
        }
        context.fireChannelInactive()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        close(reason: "\(error)")
    }

    /// Closes the connection, keeping the first reason given.
    public func close(reason: String) {
        if closeReason == nil { closeReason = reason }
        context?.close(promise: nil)
    }

    private func sendPing(timeout: TimeAmount) {
        // One PING in flight at a time: its own timeout judges the connection.
        guard pingTimeout == nil, let context else { return }
        do {
            try grpc.http2.sendPing()
        } catch {
            return close(reason: "cannot send PING: \(error)")
        }
        pingTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            self?.close(reason: "keepalive PING not answered within \(timeout)")
        }
        if !flushPending {
            flushOutput()
        }
    }

    private func handle(_ event: GRPCClientEvent) {
        switch event {
        case .response(let response):
            guard let call = calls.removeValue(forKey: response.streamID) else { return }
            call.deadline?.cancel()
            call.completion(response)
        case .pingAcknowledged:
            pingTimeout?.cancel()
            pingTimeout = nil
        case .goAway:
            receivedGoAway = true
        }
    }

    private static func failure(streamID: Int32, _ reason: String, mayHaveBeenProcessed: Bool) -> GRPCResponse {
        GRPCResponse(streamID: streamID, status: GRPCStatus(.unavailable, reason), message: nil, mayHaveBeenProcessed: mayHaveBeenProcessed)
    }

    private func flushOutput() {
        guard let context else { return }
        flushPending = true
        defer { flushPending = false }
        var reused: ByteBuffer?
        if var spare = outputBuffer {
            outputBuffer = nil
            // Still held by a pending write when the server reads slowly: not reused.
            if spare.modifyIfUniquelyOwned({ $0.clear() }) != nil { reused = spare }
        }
        var buffer = reused ?? context.channel.allocator.buffer(capacity: 1024)
        do {
            try grpc.drainOutput({ buffer.writeBytes($0) }, onEvent: handle)
        } catch {
            return close(reason: "HTTP/2 output error: \(error)")
        }
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        // A burst's large buffer is not kept for the connection's lifetime.
        outputBuffer = buffer.capacity <= 64 * 1024 ? buffer : nil
    }
}

/// The connection ended before it was ready for calls.
public struct GRPCConnectionClosedError: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { reason }
}
