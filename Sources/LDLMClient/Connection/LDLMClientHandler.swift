import LDLMGRPC
import LDLMHTTP2
import NIOCore
import NIOTLS

/// Drives one ``GRPCClientConnection`` on a channel: starts calls, feeds reads,
/// writes output, sends keepalive PINGs and reports when the connection is ready.
final class LDLMClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let grpc: GRPCClientConnection
    private let metadata: [HTTP2Header]
    private let options: ConnectionOptions
    /// Succeeds once calls can flow (after TCP connect, or after the TLS
    /// handshake), fails if the connection closes first.
    let ready: EventLoopPromise<Void>
    private var isReadyResolved = false
    /// Why the connection ended, for the errors of calls and lost locks.
    private(set) var closeReason: String?
    /// The server said GOAWAY: calls in flight finish, new ones go elsewhere.
    private(set) var receivedGoAway = false
    private var context: ChannelHandlerContext?
    private var completions = StreamIDMap<(GRPCResponse) -> Void>()
    private var flushPending = false
    /// Reused for every write: the socket usually takes it whole, leaving it
    /// uniquely ours again by the next flush.
    private var outputBuffer: ByteBuffer?
    private var keepaliveTask: RepeatedTask?
    private var pingTimeout: Scheduled<Void>?
    private var readyTimeout: Scheduled<Void>?

    init(grpc: GRPCClientConnection, options: ConnectionOptions, ready: EventLoopPromise<Void>) {
        self.grpc = grpc
        self.metadata = options.password.map { [HTTP2Header("authorization", $0)] } ?? []
        self.options = options
        self.ready = ready
    }

    var isUsable: Bool { context != nil && !receivedGoAway }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The bootstrap's timeout covers TCP only; this one covers the TLS handshake too.
        let timeout = options.connectTimeout
        readyTimeout = context.eventLoop.scheduleTask(in: timeout) { [weak self] in
            self?.close(reason: "connect timeout after \(timeout)")
        }
    }

    func channelActive(context: ChannelHandlerContext) {
        flushOutput()
        if options.tls == nil { resolveReady(.success(())) }
        if let keepalive = options.keepalive {
            keepaliveTask = context.eventLoop.scheduleRepeatedTask(initialDelay: keepalive.interval, delay: keepalive.interval) { [weak self] _ in
                self?.sendPing(timeout: keepalive.timeout)
            }
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent { resolveReady(.success(())) }
        context.fireUserInboundEventTriggered(event)
    }

    private func resolveReady(_ result: Result<Void, Error>) {
        guard !isReadyResolved else { return }
        isReadyResolved = true
        readyTimeout?.cancel()
        ready.completeWith(result)
    }

    /// A channel that never connected gets no `channelInactive`, only this.
    func handlerRemoved(context: ChannelHandlerContext) {
        resolveReady(.failure(ConnectionClosedError(reason: closeReason ?? "connection closed")))
    }

    func call(path: String, prefixedMessage: [UInt8], completion: @escaping (GRPCResponse) -> Void) -> Int32 {
        guard context != nil else {
            // Nothing would ever flush or answer it.
            completion(Self.failure(streamID: 0, closeReason ?? "connection closed"))
            return 0
        }
        let streamID: Int32
        do {
            streamID = try grpc.startCall(path: path, prefixedMessage: prefixedMessage, metadata: metadata)
            completions[streamID] = completion
        } catch {
            completion(Self.failure(streamID: 0, "cannot start call: \(error)"))
            return 0
        }
        if !flushPending {
            flushOutput()
        }
        return streamID
    }

    /// Resets the call's stream; the server withdraws it. Its completion still
    /// runs, with the response when that had already arrived.
    func cancel(streamID: Int32) {
        guard streamID != 0, completions[streamID] != nil else { return }
        grpc.http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        if !flushPending {
            flushOutput()
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        flushPending = true
        do {
            try buffer.withUnsafeReadableBytes { bytes throws(HTTP2Error) in try grpc.receive(bytes, onEvent: handle) }
        } catch {
            close(reason: "HTTP/2 protocol error: \(error)")
        }
        flushOutput()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let reason = closeReason ?? "connection closed by the server"
        closeReason = reason
        self.context = nil
        keepaliveTask?.cancel()
        pingTimeout?.cancel()
        resolveReady(.failure(ConnectionClosedError(reason: reason)))
        let pending = completions
        completions.removeAll()
        for (streamID, completion) in pending {
            completion(Self.failure(streamID: streamID, reason))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        close(reason: "\(error)")
    }

    /// Closes the connection, keeping the first reason given.
    func close(reason: String) {
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
            completions.removeValue(forKey: response.streamID)?(response)
        case .pingAcknowledged:
            pingTimeout?.cancel()
            pingTimeout = nil
        case .goAway:
            receivedGoAway = true
        }
    }

    private static func failure(streamID: Int32, _ reason: String) -> GRPCResponse {
        GRPCResponse(streamID: streamID, status: GRPCStatus(.unavailable, reason), message: nil)
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
struct ConnectionClosedError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
