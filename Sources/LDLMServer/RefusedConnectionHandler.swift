import LDLMHTTP2
import NIOCore

/// The whole pipeline of a connection refused over a connection limit: logs
/// why, sends an HTTP/2 GOAWAY ENHANCE_YOUR_CALM where the connection is in
/// clear text, and closes it without reading anything.
final class RefusedConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reason: String
    private let sendsGoAway: Bool
    private let connection: ConnectionContext

    init(reason: String, sendsGoAway: Bool, connection: ConnectionContext) {
        self.reason = reason
        self.sendsGoAway = sendsGoAway
        self.connection = connection
    }

    func channelActive(context: ChannelHandlerContext) {
        connection.logger.warning("refused connection over a connection limit", metadata: ["reason": "\(reason)"])
        guard sendsGoAway else {
            context.close(promise: nil)
            return
        }
        let goAway = context.channel.allocator.buffer(bytes: Self.goAwayFrames(debugData: "too many connections: \(reason)"))
        context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}

    /// The server preface (an empty SETTINGS frame) then GOAWAY with last
    /// stream 0 and ENHANCE_YOUR_CALM, carrying `debugData` (RFC 9113 §6.8).
    static func goAwayFrames(debugData: String) -> [UInt8] {
        let debug = Array(debugData.utf8.prefix(256))
        let length = 8 + debug.count
        let settings: [UInt8] = [0, 0, 0, 0x4, 0, 0, 0, 0, 0]
        let goAwayHeader: [UInt8] = [0, UInt8(length >> 8), UInt8(length & 0xff), 0x7, 0, 0, 0, 0, 0]
        let lastStreamAndCode: [UInt8] = [0, 0, 0, 0, 0, 0, 0, UInt8(HTTP2ErrorCode.enhanceYourCalm)]
        return settings + goAwayHeader + lastStreamAndCode + debug
    }
}
