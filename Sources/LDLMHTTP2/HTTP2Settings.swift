/// The limits one side announces in its SETTINGS frame and enforces itself.
public struct HTTP2Settings: Sendable {
    /// Streams the peer may have open at once.
    public var maxConcurrentStreams: UInt32 = 1000
    /// Bytes of header fields per block (name + value + 32 each, as RFC 9113 counts).
    public var maxHeaderListSize: UInt32 = 64 * 1024
    /// Per-stream receive window.
    public var initialWindowSize: UInt32 = 1 << 20
    /// Connection-wide receive window.
    public var connectionWindowSize: Int32 = 1 << 24

    public init() {}
}
