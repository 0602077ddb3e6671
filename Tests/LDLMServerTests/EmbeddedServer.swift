import LDLMCore
import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import LDLMTestSupport
import Logging
import NIOCore
import NIOEmbedded
import XCTest

@testable import LDLMServer

/// The lock core's clock, read from an embedded loop's virtual time.
final class EmbeddedLoopClock: LockClock {
    private let loop: EmbeddedEventLoop

    init(_ loop: EmbeddedEventLoop) {
        self.loop = loop
    }

    var nanosecondsNow: UInt64 { loop.now.uptimeNanoseconds }
}

/// A server's lock manager, services and interceptors on an
/// `EmbeddedEventLoop`, whose time moves only when a test advances it.
final class EmbeddedServer {
    static let unixSocketPath = "/run/ldlm/test.sock"
    /// What the server's wall clock says, in Unix milliseconds.
    static let wallClockNow: Int64 = 1_700_000_000_000

    let loop = EmbeddedEventLoop()
    /// With `remoteLoop`, a second loop whose connections reach the manager
    /// through its ``OwnerLoopBridge``, as on a server with `--event_loops 2`.
    let connectionLoop: EmbeddedEventLoop?
    let manager: LockManager
    let pipeline: ConnectionPipeline
    let services: [RPCService]
    /// Kept when the configuration names a metrics address, as the server does.
    let metrics: ServerMetrics?

    init(remoteLoop: Bool = false, configure: (inout ServerConfig) -> Void = { _ in }) {
        connectionLoop = remoteLoop ? EmbeddedEventLoop() : nil
        var config = ServerConfig()
        configure(&config)
        manager = LockManager(
            eventLoop: loop,
            clock: EmbeddedLoopClock(loop),
            fencingTokens: .startingAboveWallClock(),
            maxNameBytes: config.maxNameBytes,
            maxLocks: config.maxLocks,
            maxWaiters: config.maxWaiters,
            clearOnDisconnect: config.clearOnDisconnect,
            wallClock: { Self.wallClockNow }
        )
        let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        services = LockServer.services(manager: manager, logger: logger)
        metrics = config.metricsListenAddress.map { _ in ServerMetrics(tcpTransport: "plaintext", stateFile: false) }
        manager.metrics = metrics
        pipeline = ConnectionPipeline(
            manager: manager,
            router: RPCRouter(
                services: services,
                interceptors: LockServer.interceptors(config),
                metrics: metrics
            ),
            config: config,
            tls: nil,
            logger: logger,
            otherLoops: connectionLoop.map { [$0] } ?? []
        )
    }

    /// A connected client whose server side is the real connection pipeline,
    /// from `127.0.0.1:port` or, with `overUnixSocket`, on the Unix socket.
    func connect(overUnixSocket: Bool = false, port: Int = 4000) throws -> EmbeddedClient {
        let channel = EmbeddedChannel(loop: connectionLoop ?? loop)
        let peer = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        // As an accepted socket has it before its pipeline is built.
        channel.remoteAddress = peer
        try (overUnixSocket ? pipeline.overUnixSocket(path: Self.unixSocketPath) : pipeline).configure(channel)
        try channel.connect(to: peer).wait()
        let client = try EmbeddedClient(channel: channel)
        if connectionLoop != nil {
            client.runLoops = { [unowned self] in settle() }
        }
        try client.exchange()
        return client
    }

    func advanceTime(by amount: TimeAmount) {
        loop.advanceTime(by: amount)
        connectionLoop?.advanceTime(by: amount)
        settle()
    }

    /// Runs both loops until the tasks they hand each other are done: each
    /// hop is one task on the receiving loop, so a few rounds carry any chain.
    func settle() {
        guard let connectionLoop else { return }
        for _ in 0..<6 {
            connectionLoop.run()
            loop.run()
        }
    }
}

/// An HTTP/2 client speaking to one embedded server connection.
final class EmbeddedClient {
    let channel: EmbeddedChannel
    let http2: HTTP2Connection
    private(set) var events: [HTTP2Event] = []
    /// Runs the server's loops' queued tasks, when its calls hop between loops.
    var runLoops: (() -> Void)?

    init(channel: EmbeddedChannel) throws {
        self.channel = channel
        http2 = try HTTP2Connection(role: .client)
    }

    /// Carries bytes both ways until neither side has more to say.
    func exchange(file: StaticString = #filePath, line: UInt = #line) throws {
        for _ in 0..<1_000 {
            let request = try http2.drainOutput()
            if !request.isEmpty, channel.isActive {
                try channel.writeInbound(ByteBuffer(bytes: request))
            }
            runLoops?()
            var answered = false
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                answered = true
                try http2.receive(Array(buffer.readableBytesView))
            }
            events += http2.takeEvents()
            if request.isEmpty, !answered { return }
        }
        XCTFail("the connection never went quiet", file: file, line: line)
    }

    /// Calls `method` of `service`, `ldlm.LDLM` unless said otherwise.
    @discardableResult
    func call(
        _ method: String,
        _ message: some LDLMMessage,
        service: String = "ldlm.LDLM",
        metadata: [HTTP2Header] = []
    ) throws -> Int32 {
        let streamID = try http2.sendRequest(
            headers: Self.requestHeaders(method, service: service, metadata: metadata),
            body: GRPCMessageFraming.frame(message.serializedBytes())
        )
        try exchange()
        return streamID
    }

    private static func requestHeaders(_ method: String, service: String, metadata: [HTTP2Header]) -> [HTTP2Header] {
        [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/\(service)/\(method)"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ] + metadata
    }

    /// Sends a call to the server's connection without running its loops or
    /// reading the answer.
    @discardableResult
    func send(_ method: String, _ message: some LDLMMessage, service: String = "ldlm.LDLM", metadata: [HTTP2Header] = []) throws -> Int32 {
        let streamID = try http2.sendRequest(
            headers: Self.requestHeaders(method, service: service, metadata: metadata),
            body: GRPCMessageFraming.frame(message.serializedBytes())
        )
        try channel.writeInbound(ByteBuffer(bytes: try http2.drainOutput()))
        return streamID
    }

    /// Resets a stream without running the server's loops.
    func sendReset(_ streamID: Int32) throws {
        http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        try channel.writeInbound(ByteBuffer(bytes: try http2.drainOutput()))
    }

    func resetStream(_ streamID: Int32) throws {
        http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        try exchange()
    }

    /// The gRPC status the stream ended with, nil while it is open.
    func status(of streamID: Int32) -> (code: Int, message: String?)? {
        let blocks = events.compactMap { event -> [HTTP2Header]? in
            if case .headers(streamID, let headers) = event { return headers.fields }
            return nil
        }
        guard let last = blocks.last, let code = last.first(where: { $0.name == "grpc-status" }).flatMap({ Int($0.value) }) else { return nil }
        return (code, last.first(where: { $0.name == "grpc-message" }).map { GRPCPercentEncoding.decode($0.value) })
    }

    func response<Response: LDLMMessage>(of streamID: Int32, as _: Response.Type) throws -> Response? {
        let body = events.reduce(into: [UInt8]()) { body, event in
            if case .data(streamID, let bytes) = event { body += bytes }
        }
        guard body.count >= GRPCMessageFraming.prefixLength else { return nil }
        return try Array(body.dropFirst(GRPCMessageFraming.prefixLength)).withUnsafeBytes { bytes in
            try Response(serializedBytes: bytes)
        }
    }

    /// Every message the stream carried so far, in order (a streaming call's several).
    func messages<Response: LDLMMessage>(of streamID: Int32, as _: Response.Type) throws -> [Response] {
        var body = events.reduce(into: [UInt8]()) { body, event in
            if case .data(streamID, let bytes) = event { body += bytes }
        }[...]
        var messages: [Response] = []
        while body.count >= GRPCMessageFraming.prefixLength {
            let length = body.dropFirst().prefix(4).reduce(0) { $0 << 8 | Int($1) }
            let message = body.dropFirst(GRPCMessageFraming.prefixLength).prefix(length)
            messages.append(try Response(serializedBytes: message))
            body = body.dropFirst(GRPCMessageFraming.prefixLength + length)
        }
        return messages
    }

    var receivedGoAway: Bool {
        events.contains { if case .goAway = $0 { return true } else { return false } }
    }

    /// Takes what the server wrote without answering it, as a client that
    /// stopped reading or responding would; true if it held a PING.
    func takeUnansweredOutputContainsPing() throws -> Bool {
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        let pingHeader: [UInt8] = [0, 0, 8, 6, 0, 0, 0, 0, 0]
        return bytes.count >= pingHeader.count && (0...(bytes.count - pingHeader.count)).contains { bytes[$0..<$0 + pingHeader.count].elementsEqual(pingHeader) }
    }
}
