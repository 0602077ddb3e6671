import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import NIOCore
import NIOPosix

/// One HTTP/2 connection to an LDLM server, i.e. one server-side session: its
/// locks live as long as it does.
///
/// Callback based and confined to its event loop: call the methods on
/// ``eventLoop``; completions run there too. Calls made from a completion are
/// batched into one write.
public final class LDLMClientConnection {
    public let channel: Channel
    public var eventLoop: EventLoop { channel.eventLoop }
    private let handler: LDLMClientHandler

    private init(channel: Channel, handler: LDLMClientHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port`. `password` is sent as `authorization` metadata.
    public static func connect(
        host: String,
        port: Int,
        password: String? = nil,
        group: EventLoopGroup
    ) -> EventLoopFuture<LDLMClientConnection> {
        let metadata = password.map { [HTTP2Header("authorization", $0)] } ?? []
        let authority = "\(host):\(port)"
        return ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let grpc = try GRPCClientConnection(authority: authority)
                    try channel.pipeline.syncOperations.addHandler(LDLMClientHandler(grpc: grpc, metadata: metadata))
                }
            }
            .connect(host: host, port: port)
            .flatMap { channel in
                channel.pipeline.handler(type: LDLMClientHandler.self).map { handler in
                    LDLMClientConnection(channel: channel, handler: handler)
                }
            }
    }

    /// Makes a unary call with raw message bytes.
    public func call(
        path: String,
        message: [UInt8],
        timeoutNanoseconds: UInt64? = nil,
        completion: @escaping (GRPCResponse) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        handler.call(path: path, prefixedMessage: GRPCMessageFraming.frame(message), timeoutNanoseconds: timeoutNanoseconds, completion: completion)
    }

    public func lock(_ request: LockRequest, timeoutNanoseconds: UInt64? = nil, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) {
        typedCall("/ldlm.LDLM/Lock", request, timeoutNanoseconds: timeoutNanoseconds, completion: completion)
    }

    public func tryLock(_ request: TryLockRequest, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) {
        typedCall("/ldlm.LDLM/TryLock", request, timeoutNanoseconds: nil, completion: completion)
    }

    public func unlock(_ request: UnlockRequest, completion: @escaping (Result<UnlockResponse, GRPCStatus>) -> Void) {
        typedCall("/ldlm.LDLM/Unlock", request, timeoutNanoseconds: nil, completion: completion)
    }

    public func renew(_ request: RenewRequest, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) {
        typedCall("/ldlm.LDLM/Renew", request, timeoutNanoseconds: nil, completion: completion)
    }

    /// Closes the connection; the server then releases this session's locks.
    public func close() -> EventLoopFuture<Void> {
        channel.close()
    }

    private func typedCall<Request: LDLMMessage, Response: LDLMMessage>(
        _ path: String,
        _ request: Request,
        timeoutNanoseconds: UInt64?,
        completion: @escaping (Result<Response, GRPCStatus>) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        let prefixedMessage = request.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
        handler.call(path: path, prefixedMessage: prefixedMessage, timeoutNanoseconds: timeoutNanoseconds) { response in
            guard response.status.code == .ok else {
                return completion(.failure(response.status))
            }
            guard let message = response.message else {
                return completion(.failure(GRPCStatus(.internal, "response without a message")))
            }
            do {
                completion(.success(try Response(serializedBytes: message)))
            } catch {
                completion(.failure(GRPCStatus(.internal, "cannot decode response: \(error)")))
            }
        }
    }
}

final class LDLMClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let grpc: GRPCClientConnection
    private let metadata: [HTTP2Header]
    private var context: ChannelHandlerContext?
    private var completions = StreamIDMap<(GRPCResponse) -> Void>()
    private var flushPending = false
    /// Reused for every write: the socket usually takes it whole, leaving it
    /// uniquely ours again by the next flush.
    private var outputBuffer: ByteBuffer?

    init(grpc: GRPCClientConnection, metadata: [HTTP2Header]) {
        self.grpc = grpc
        self.metadata = metadata
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        flushOutput()
        context.fireChannelActive()
    }

    func call(path: String, prefixedMessage: [UInt8], timeoutNanoseconds: UInt64?, completion: @escaping (GRPCResponse) -> Void) {
        do {
            let streamID = try grpc.startCall(path: path, prefixedMessage: prefixedMessage, metadata: metadata, timeoutNanoseconds: timeoutNanoseconds)
            completions[streamID] = completion
        } catch {
            completion(GRPCResponse(streamID: 0, status: GRPCStatus(.unavailable, "cannot start call: \(error)"), message: nil))
            return
        }
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
            context.close(promise: nil)
        }
        flushOutput()
    }

    func channelInactive(context: ChannelHandlerContext) {
        let pending = completions
        completions.removeAll()
        for (streamID, completion) in pending {
            completion(GRPCResponse(streamID: streamID, status: GRPCStatus(.unavailable, "connection closed"), message: nil))
        }
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func handle(_ event: GRPCClientEvent) {
        if case .response(let response) = event, let completion = completions.removeValue(forKey: response.streamID) {
            completion(response)
        }
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
            context.close(promise: nil)
            return
        }
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        // A burst's large buffer is not kept for the connection's lifetime.
        outputBuffer = buffer.capacity <= 64 * 1024 ? buffer : nil
    }
}
