import CNGHTTP2

/// A failure reported by nghttp2, e.g. a frame-level protocol error by the peer.
/// After one, the connection is finished: send any pending output (a GOAWAY
/// when nghttp2 queued one) and close it.
public struct HTTP2Error: Error, CustomStringConvertible, Sendable {
    public let code: Int32

    public init(code: Int32) {
        self.code = code
    }

    public var description: String {
        String(cString: nghttp2_strerror(code))
    }
}
