import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTP/1.1 request, its body read whole.
struct HTTPRequest {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var remoteAddress: SocketAddress?

    /// The target without its query.
    var path: Substring {
        head.uri.prefix { $0 != "?" }
    }
}

struct HTTPResponse {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// Called when the answer surely did not reach the client: its
    /// connection closed before the answer was written, or the write failed.
    var onUndelivered: (() -> Void)?

    init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func text(_ status: HTTPResponseStatus, _ text: String, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: ByteBuffer(string: text))
    }
}

/// Answers the requests of one HTTP listener. Called on the event loop the
/// listener was bound to, one request of a connection at a time.
protocol HTTPResponder {
    func respond(to request: HTTPRequest, eventLoop: EventLoop) -> EventLoopFuture<HTTPResponse>
}

struct HTTPListenerLimits {
    /// A larger body is refused with 413 and the connection closed.
    var maxBodyBytes = 64 * 1024
    /// A connection must complete a request this soon after it opens or after
    /// its previous answer, or it is closed: idle keep-alive connections and
    /// requests trickled in byte by byte hold no slot for long.
    var requestTimeout = TimeAmount.seconds(30)
}

/// The HTTP/1.1 side ports (metrics and probes, the REST gateway), on NIO's own
/// HTTP/1 codec: it comes with the swift-nio we already build, and these ports
/// serve a few small routes, not traffic that would need a framework.
enum HTTPListener {
    /// TLS, when given, uses the provider's HTTP/1.1 context, so a certificate
    /// reload (SIGHUP) reaches new connections here too. Connections over the
    /// limits of `connections` are closed at once; a drain reaches the rest
    /// through it (``OpenConnections/quiesce(allClosed:)``).
    static func bind(
        _ address: String,
        eventLoop: EventLoop,
        tls: TLSContextProvider?,
        limits: HTTPListenerLimits,
        connections: OpenConnections,
        responder: HTTPResponder
    ) async throws -> Channel {
        let listenAddress = try ListenAddress(parsing: address)
        return try await ServerBootstrap(group: eventLoop)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard connections.admit(channel, ip: channel.remoteAddress?.ipAddress) == .admitted else {
                        channel.close(promise: nil)
                        return
                    }
                    let handlers = channel.pipeline.syncOperations
                    if let tls {
                        try handlers.addHandler(NIOSSLServerHandler(context: tls.currentForHTTP1))
                    }
                    try handlers.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: true)
                    try handlers.addHandler(HTTPRequestHandler(responder: responder, limits: limits))
                }
            }
            .bind(host: listenAddress.host, port: listenAddress.port)
            .get()
    }
}

/// Collects each request with its body, has the responder answer it, and
/// writes the answer with its length. NIO's pipelining handler ahead of it
/// holds back a client's next request until this one is answered.
///
/// That handler does not look at writability: a client that pipelines
/// requests and never reads the answers would have them pile up in memory
/// without bound. So no read is passed on while the channel is unwritable;
/// the client's requests wait in its own socket buffers, and the request
/// timeout closes a connection that stays so.
///
/// A drain's `ChannelShouldQuiesceEvent` never reaches this handler: the
/// pipelining handler takes it, closes an idle connection at once and a busy
/// one after the answer in hand, which it marks `Connection: close`.
final class HTTPRequestHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case reading(HTTPRequestHead, ByteBuffer)
        /// The body went over the limit: the rest of it is dropped, then 413.
        case discarding(HTTPRequestHead)
        case answering
        /// Answered 413 on its declared length; the connection closes once
        /// that is written, and nothing more of it is read.
        case refused
    }

    private let responder: HTTPResponder
    private let limits: HTTPListenerLimits
    private var state = State.idle
    private var closesAfterAnswer = false
    private var requestTimer: Scheduled<Void>?
    /// A read held back while the channel was unwritable.
    private var readHeld = false

    init(responder: HTTPResponder, limits: HTTPListenerLimits) {
        self.responder = responder
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armRequestTimer(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        armRequestTimer(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        requestTimer?.cancel()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readHeld = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, readHeld {
            readHeld = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes {
                // Refused before its body: a client waiting for 100-continue,
                // or one sending megabytes, learns it at once.
                requestTimer?.cancel()
                closesAfterAnswer = true
                write(.payloadTooLarge(limits.maxBodyBytes), version: head.version, context: context)
                state = .refused
            } else {
                state = .reading(head, context.channel.allocator.buffer(capacity: 0))
            }
        case (.body(var chunk), .reading(let head, var body)):
            if body.readableBytes + chunk.readableBytes > limits.maxBodyBytes {
                state = .discarding(head)
            } else {
                body.writeBuffer(&chunk)
                state = .reading(head, body)
            }
        case (.body, .discarding), (.body, .refused), (.end, .refused):
            break
        case (.end, .reading(let head, let body)):
            requestTimer?.cancel()
            state = .answering
            closesAfterAnswer = closesAfterAnswer || !head.isKeepAlive
            let request = HTTPRequest(head: head, body: body, remoteAddress: context.channel.remoteAddress)
            responder.respond(to: request, eventLoop: context.eventLoop).whenComplete { result in
                let response: HTTPResponse
                switch result {
                case .success(let answer): response = answer
                case .failure: response = .text(.internalServerError, "internal error\n")
                }
                self.write(response, version: head.version, context: context)
            }
        case (.end, .discarding(let head)):
            requestTimer?.cancel()
            state = .answering
            // The client may still be sending a body nobody will read.
            closesAfterAnswer = true
            write(.payloadTooLarge(limits.maxBodyBytes), version: head.version, context: context)
        case (.head, _), (.body, _), (.end, _):
            // The pipelining handler passes one request at a time; anything
            // else is a codec fault, not something a client can cause.
            context.close(promise: nil)
        }
    }

    /// A request that cannot be parsed (answered 400 ahead of us) or a TLS
    /// failure ends the connection.
    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func write(_ response: HTTPResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        guard context.channel.isActive else {
            response.onUndelivered?()
            return
        }
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
        if closesAfterAnswer { headers.replaceOrAdd(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: version, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        if let onUndelivered = response.onUndelivered {
            written.futureResult.whenFailure { _ in onUndelivered() }
        }
        // Ready for the next request before the end goes out: writing it
        // lets the pipelining handler pass on, from within this call, a
        // request it held back while this one was being answered.
        state = .idle
        if closesAfterAnswer {
            written.futureResult.whenComplete { _ in context.close(promise: nil) }
        } else {
            armRequestTimer(context)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
    }

    private func armRequestTimer(_ context: ChannelHandlerContext) {
        requestTimer?.cancel()
        requestTimer = context.eventLoop.scheduleTask(in: limits.requestTimeout) {
            context.close(promise: nil)
        }
    }
}

private extension HTTPResponse {
    static func payloadTooLarge(_ limit: Int) -> HTTPResponse {
        .text(.payloadTooLarge, "request body over \(limit) bytes\n")
    }
}
