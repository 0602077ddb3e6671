/// What the peer did, in the order nghttp2 reported it.
public enum HTTP2Event: Equatable, Sendable {
    /// A complete header block: request or response headers, or trailers.
    case headers(streamID: Int32, headers: HTTP2HeaderFields)
    /// A chunk of a stream's body; a message may arrive in many chunks.
    case data(streamID: Int32, bytes: [UInt8])
    /// The peer will send nothing more on this stream.
    case endStream(streamID: Int32)
    /// The stream is gone. `errorCode` 0 means both sides finished it normally;
    /// anything else is a reset (by either side) or a connection failure. A peer
    /// reset with NO_ERROR before our side finished is reported as CANCEL (8).
    case streamClosed(streamID: Int32, errorCode: UInt32)
    /// The peer reset a stream that had already closed here. A peer resets
    /// only a stream still open on its side, so it never received all we sent
    /// on it: the response was cut off in flight.
    case resetAfterClose(streamID: Int32)
    /// The peer sent a header block over `SETTINGS_MAX_HEADER_LIST_SIZE`;
    /// the stream was reset and the block dropped.
    case headerListTooLarge(streamID: Int32)
    /// What a streamed body had queued when
    /// ``HTTP2Connection/reportWhenQueuedDataSent(streamID:)`` asked has gone out.
    case queuedDataSent(streamID: Int32)
    /// The peer answered one of our PINGs.
    case pingAcknowledged
    /// The peer is shutting the connection down.
    case goAway(lastStreamID: Int32, errorCode: UInt32)
}
