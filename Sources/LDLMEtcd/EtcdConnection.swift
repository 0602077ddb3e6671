import LDLMGRPC
import LDLMHTTP2
import NIOCore
import NIOPosix
import NIOSSL

/// One HTTP/2 connection to one etcd member. Confined to its event loop.
final class EtcdConnection {
    let endpoint: EtcdEndpoint
    /// The endpoint's place in the configuration's list.
    let endpointIndex: Int
    let channel: Channel
    private let handler: GRPCClientChannelHandler
    private var callsInFlight = 0
    private var isRetired = false

    private init(endpoint: EtcdEndpoint, endpointIndex: Int, channel: Channel, handler: GRPCClientChannelHandler) {
        self.endpoint = endpoint
        self.endpointIndex = endpointIndex
        self.channel = channel
        self.handler = handler
    }

    /// Succeeds once calls can be made: after TCP connect, or after the TLS handshake.
    static func connect(
        to endpoint: EtcdEndpoint,
        endpointIndex: Int,
        tls: NIOSSLContext?,
        options: GRPCClientChannelOptions,
        eventLoop: EventLoop
    ) -> EventLoopFuture<EtcdConnection> {
        ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(options.connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let grpc = try GRPCClientConnection(authority: endpoint.description, scheme: tls == nil ? "http" : "https")
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        // NIOSSL refuses an IP literal as SNI; it then checks the certificate against the address.
                        let isAddress = endpoint.host.contains(":") || endpoint.host.allSatisfy { $0.isNumber || $0 == "." }
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : endpoint.host))
                    }
                    try pipeline.addHandler(GRPCClientChannelHandler(grpc: grpc, options: options, ready: channel.eventLoop.makePromise()))
                }
            }
            .connect(host: endpoint.host, port: endpoint.port)
            .flatMap { channel in
                channel.pipeline.handler(type: GRPCClientChannelHandler.self).flatMap { handler in
                    handler.ready.futureResult.map {
                        EtcdConnection(endpoint: endpoint, endpointIndex: endpointIndex, channel: channel, handler: handler)
                    }
                }
            }
    }

    /// False once the connection closed, was retired, or the member sent GOAWAY.
    var isUsable: Bool {
        !isRetired && handler.isUsable
    }

    var closeReason: String? { handler.closeReason }

    func call(path: String, prefixedMessage: [UInt8], metadata: [HTTP2Header], timeout: TimeAmount, completion: @escaping (GRPCResponse) -> Void) {
        callsInFlight += 1
        handler.call(path: path, prefixedMessage: prefixedMessage, metadata: metadata, timeout: timeout) { response in
            self.callsInFlight -= 1
            completion(response)
            if self.isRetired, self.callsInFlight == 0 {
                self.close(reason: "left for another member")
            }
        }
    }

    /// Takes no new calls and closes once the ones in flight are answered:
    /// closing at once would turn them into indeterminate failures.
    func retire() {
        isRetired = true
        if callsInFlight == 0 {
            close(reason: "left for another member")
        }
    }

    func close(reason: String) {
        handler.close(reason: reason)
    }
}
