import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/2 connection to an LDLM server, i.e. one server-side session: its
/// locks live as long as it does.
///
/// Callback based and confined to its event loop: call the methods on
/// ``eventLoop``; completions run there too. Calls made from a completion are
/// batched into one write. ``LDLMClient`` and `ldlm-bench` both build on it.
package final class LDLMClientConnection {
    package let channel: Channel
    package var eventLoop: EventLoop { channel.eventLoop }
    private let handler: GRPCClientChannelHandler

    private init(channel: Channel, handler: GRPCClientChannelHandler) {
        self.channel = channel
        self.handler = handler
    }

    /// Connects to `host:port` in plaintext. `password` is sent as `authorization` metadata.
    package static func connect(
        host: String,
        port: Int,
        password: String? = nil,
        group: EventLoopGroup
    ) -> EventLoopFuture<LDLMClientConnection> {
        connect(ConnectionOptions(host: host, port: port, password: password), group: group)
    }

    /// Connects and, with TLS, completes the handshake: the future succeeds
    /// once calls can be made.
    package static func connect(_ options: ConnectionOptions, group: EventLoopGroup) -> EventLoopFuture<LDLMClientConnection> {
        let bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(options.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addHandlers(to: channel, options: options)
                }
            }
        let connected = options.unixSocketPath.map { bootstrap.connect(unixDomainSocketPath: $0) }
            ?? bootstrap.connect(host: options.host, port: options.port)
        return connected
            .flatMap { channel in
                channel.pipeline.handler(type: GRPCClientChannelHandler.self).flatMap { handler in
                    handler.ready.futureResult.map { LDLMClientConnection(channel: channel, handler: handler) }
                }
            }
    }

    private static func addHandlers(to channel: Channel, options: ConnectionOptions) throws {
        let grpc = try GRPCClientConnection(authority: options.authority, scheme: options.tls == nil ? "http" : "https")
        let pipeline = channel.pipeline.syncOperations
        if let tls = options.tls {
            try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: options.serverHostname))
        }
        let ready = channel.eventLoop.makePromise(of: Void.self)
        try pipeline.addHandler(GRPCClientChannelHandler(grpc: grpc, options: options.channelOptions, ready: ready))
    }

    /// False once the connection closed or the server sent GOAWAY: new calls
    /// belong on a new connection.
    package var isUsable: Bool {
        eventLoop.preconditionInEventLoop()
        return handler.isUsable
    }

    /// Why the connection closed; nil while it is open.
    package var closeReason: String? {
        eventLoop.preconditionInEventLoop()
        return handler.closeReason
    }

    /// The calls return the call's stream ID, for ``cancel(streamID:)``.
    @discardableResult
    package func lock(_ request: LockRequest, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) -> Int32 {
        unaryCall("/ldlm.LDLM/Lock", request, completion: completion)
    }

    @discardableResult
    package func tryLock(_ request: TryLockRequest, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) -> Int32 {
        unaryCall("/ldlm.LDLM/TryLock", request, completion: completion)
    }

    @discardableResult
    package func unlock(_ request: UnlockRequest, completion: @escaping (Result<UnlockResponse, GRPCStatus>) -> Void) -> Int32 {
        unaryCall("/ldlm.LDLM/Unlock", request, completion: completion)
    }

    @discardableResult
    package func renew(_ request: RenewRequest, completion: @escaping (Result<LockResponse, GRPCStatus>) -> Void) -> Int32 {
        unaryCall("/ldlm.LDLM/Renew", request, completion: completion)
    }

    /// Resets a call's stream (RST_STREAM CANCEL), so the server drops it.
    /// Its completion still runs: with the response if that was already in,
    /// else with UNAVAILABLE.
    package func cancel(streamID: Int32) {
        eventLoop.preconditionInEventLoop()
        handler.cancel(streamID: streamID)
    }

    /// Closes the connection; the server then releases this session's locks.
    @discardableResult
    package func close() -> EventLoopFuture<Void> {
        channel.close()
    }

    /// Closes the connection as ``close()`` does, giving the reason its calls and locks report.
    package func close(reason: String) {
        eventLoop.preconditionInEventLoop()
        handler.close(reason: reason)
    }

    /// Any unary call by its `:path` (e.g. `/ldlm.admin.v1.Admin/ListLocks`).
    @discardableResult
    package func unaryCall<Request: LDLMMessage, Response: LDLMMessage>(
        _ path: String,
        _ request: Request,
        completion: @escaping (Result<Response, GRPCStatus>) -> Void
    ) -> Int32 {
        eventLoop.preconditionInEventLoop()
        let prefixedMessage = request.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
        return handler.call(path: path, prefixedMessage: prefixedMessage) { response in
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
