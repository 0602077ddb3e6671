import Foundation
import LDLMClient
import LDLMGRPC
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// Answers every LDLM call as a standby replica does: UNAVAILABLE with the
/// primary's address in the `ldlm-primary` trailer, or with the trailer empty
/// when `primary` is nil (no primary elected yet). With `sendsTrailer` false,
/// a bare UNAVAILABLE instead, as a server that is no standby may send.
/// Built on the package's own server-side gRPC layer.
final class FakeStandby: @unchecked Sendable {
    private let channel: Channel
    private let refusals = NIOLockedValueBox(0)
    let address: String

    init(primary: String?, sendsTrailer: Bool = true) throws {
        let refusals = self.refusals
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StandbyHandler(primary: primary, sendsTrailer: sendsTrailer, refusals: refusals))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        address = "127.0.0.1:\(channel.localAddress!.port!)"
    }

    /// Calls refused so far.
    var refusedCalls: Int { refusals.withLockedValue { $0 } }

    func stop() {
        try? channel.close().wait()
    }
}

private final class StandbyHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let grpc: GRPCServerConnection
    private let refusal: GRPCStatus
    private let refusals: NIOLockedValueBox<Int>

    init(primary: String?, sendsTrailer: Bool, refusals: NIOLockedValueBox<Int>) throws {
        grpc = try GRPCServerConnection()
        refusal = GRPCStatus(.unavailable, "not the primary", trailingMetadata: sendsTrailer ? ["ldlm-primary": primary ?? ""] : [:])
        self.refusals = refusals
    }

    func channelActive(context: ChannelHandlerContext) {
        flush(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var calls: [Int32] = []
        do {
            try unwrapInboundIn(data).withUnsafeReadableBytes { bytes in
                try grpc.receive(bytes) { event in
                    if case .request(let request) = event { calls.append(request.streamID) }
                }
            }
        } catch {
            return context.close(promise: nil)
        }
        for streamID in calls {
            grpc.sendStatus(streamID: streamID, refusal)
        }
        refusals.withLockedValue { $0 += calls.count }
        flush(context)
    }

    private func flush(_ context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 0)
        do {
            try grpc.drainOutput({ buffer.writeBytes($0) }, onEvent: { _ in })
        } catch {
            return context.close(promise: nil)
        }
        if buffer.readableBytes > 0 {
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
    }
}

/// A local port nothing listens on, for now.
func freePort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
    let port = channel.localAddress!.port!
    try channel.close().wait()
    return port
}

/// A local address nothing listens on: connecting fails at once.
func closedAddress() throws -> String {
    "127.0.0.1:\(try freePort())"
}

/// A fresh directory for a server's state file and admin socket.
func temporaryDirectory() throws -> URL {
    // Short: a Unix socket path must fit in 108 bytes.
    let url = URL(fileURLWithPath: "/tmp/ldlm-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Asks the admin service until `name`'s holder matches.
func awaitHolder(
    of name: String,
    through admin: LDLMAdmin,
    where matches: @escaping @Sendable (LDLMAdmin.Holder) -> Bool
) async throws -> LDLMAdmin.Holder {
    while true {
        let locks = (try? await admin.listLocks()) ?? []
        if let holder = locks.first(where: { $0.name == name })?.holders.first, matches(holder) {
            return holder
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}
