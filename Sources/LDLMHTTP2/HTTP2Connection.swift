import CNGHTTP2

/// One HTTP/2 connection driven by nghttp2, without I/O.
///
/// Feed received bytes to ``receive(_:)``, handle the events it produced with
/// ``drainEvents(_:)``, queue responses or requests with the `send` methods, and
/// write whatever ``drainOutput(_:)`` hands out to the socket. The same type
/// serves both roles; only who speaks first differs.
public final class HTTP2Connection {
    public enum Role: Sendable {
        case server
        case client
    }

    public let role: Role
    private let settings: HTTP2Settings
    /// Whether the owner gives back each stream's receive window itself, with
    /// ``consume(streamID:byteCount:)``, rather than nghttp2 as data arrives.
    private let consumesStreamDataManually: Bool
    /// Data received in the current ``receive(_:)`` whose connection window
    /// is given back once it returns: one call into nghttp2 per read.
    @exclusivity(unchecked)
    private var unconsumedConnectionBytes = 0
    @exclusivity(unchecked)
    private var session: OpaquePointer!
    /// Reused from batch to batch: a received batch costs no allocation.
    @exclusivity(unchecked)
    private var events: [HTTP2Event] = []
    @exclusivity(unchecked)
    private var isDrainingEvents = false
    /// The header block being received. HTTP/2 forbids interleaving another
    /// stream's frames inside a block (RFC 9113 §4.3), so one is enough.
    @exclusivity(unchecked)
    private var inboundHeaders = InboundHeaderBlock(streamID: 0)
    /// What we send on each stream we have answered or opened, until it closes.
    @exclusivity(unchecked)
    private var outboundStreams = StreamIDMap<OutboundStream>()
    @exclusivity(unchecked)
    private var lastPingOpaque: UInt64 = 0
    /// Set when nghttp2 reported a fatal error; the session must not be used again.
    @exclusivity(unchecked)
    private var failed = false

    private struct InboundHeaderBlock {
        let streamID: Int32
        var fields: HTTP2HeaderFields
        var size = 0

        init(streamID: Int32, fields: HTTP2HeaderFields = HTTP2HeaderFields()) {
            self.streamID = streamID
            self.fields = fields
        }
    }

    private struct OutboundStream {
        /// The body still to send; nil once it is out (or there was none).
        var body: OutboundBody?
        /// Our END_STREAM has gone out.
        var isLocallyEnded = false
        /// Reset the stream with this code once our response has gone out.
        var resetAfterResponse: UInt32?
        /// Report ``HTTP2Event/queuedDataSent(streamID:)`` once the body
        /// queued so far has gone to nghttp2.
        var reportsQueuedDataSent = false
    }

    private struct OutboundBody {
        var bytes: [UInt8]
        var offset = 0
        var trailers: HTTP2HeaderBlock?
        /// A streamed body: more may come, so once `bytes` is out the stream
        /// waits for it instead of ending.
        var isOpen = false
    }

    /// With `consumesStreamDataManually`, a stream's receive window opens
    /// again only as the owner consumes its data: a stream whose messages the
    /// owner cannot take yet stops its sender, as HTTP/2 flow control meant.
    /// The connection's window is given back as data arrives either way, so
    /// one stopped stream never stops the others.
    public init(role: Role, settings: HTTP2Settings = HTTP2Settings(), consumesStreamDataManually: Bool = false) throws(HTTP2Error) {
        self.role = role
        self.settings = settings
        self.consumesStreamDataManually = consumesStreamDataManually

        var callbacks: OpaquePointer?
        try check(nghttp2_session_callbacks_new(&callbacks))
        defer { nghttp2_session_callbacks_del(callbacks) }
        Self.installCallbacks(callbacks)

        var options: OpaquePointer?
        try check(nghttp2_option_new(&options))
        defer { nghttp2_option_del(options) }
        // Bounded memory for peers that send PING/SETTINGS floods or reset streams in bulk.
        nghttp2_option_set_max_outbound_ack(options, 1000)
        nghttp2_option_set_max_settings(options, 32)
        // Closed streams are kept only to serve RFC 7540 priorities, which gRPC
        // does not use; dropping them at once also lets `sendResponse` see that
        // a stream is gone.
        nghttp2_option_set_no_closed_streams(options, 1)
        if consumesStreamDataManually {
            nghttp2_option_set_no_auto_window_update(options, 1)
        }

        let userData = Unmanaged.passUnretained(self).toOpaque()
        var created: OpaquePointer?
        switch role {
        case .server: try check(nghttp2_session_server_new2(&created, callbacks, userData, options))
        case .client: try check(nghttp2_session_client_new2(&created, callbacks, userData, options))
        }
        session = created

        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
        ]
        try check(nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count))
        try check(nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize))
    }

    /// Routes every nghttp2 callback to the connection its user data names.
    private static func installCallbacks(_ callbacks: OpaquePointer?) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            HTTP2Connection.with(userData) { $0.beginHeaders(frame!.pointee.hd.stream_id) }
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            HTTP2Connection.with(userData) {
                $0.header(
                    streamID: frame!.pointee.hd.stream_id,
                    name: UnsafeBufferPointer(start: name, count: nameLength),
                    value: UnsafeBufferPointer(start: value, count: valueLength)
                )
            }
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            HTTP2Connection.with(userData) { $0.frameReceived(frame!) }
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            let bytes = Array(UnsafeBufferPointer(start: data, count: length))
            HTTP2Connection.with(userData) { connection in
                connection.events.append(.data(streamID: streamID, bytes: bytes))
                connection.unconsumedConnectionBytes += length
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            HTTP2Connection.with(userData) { $0.streamClosed(streamID, errorCode: errorCode) }
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            HTTP2Connection.with(userData) { $0.frameSent(frame!) }
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    // MARK: Input

    /// Processes bytes read from the peer. Throws on a protocol violation; the
    /// GOAWAY nghttp2 queued for it is still in ``drainOutput(_:)``.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) {
        try checkReceived(memRecv(bytes))
    }

    public func receive(_ bytes: [UInt8]) throws(HTTP2Error) {
        try checkReceived(bytes.withUnsafeBytes { memRecv($0) })
    }

    private func memRecv(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard !failed else { return Int(NGHTTP2_ERR_INVALID_STATE.rawValue) }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let result = nghttp2_session_mem_recv(session, base, bytes.count)
        if consumesStreamDataManually, unconsumedConnectionBytes > 0 {
            // Fails only when out of memory, which nghttp2 reports again on its next call.
            _ = nghttp2_session_consume_connection(session, unconsumedConnectionBytes)
        }
        unconsumedConnectionBytes = 0
        return result
    }

    /// nghttp2 answers recoverable protocol errors itself (RST_STREAM, GOAWAY);
    /// what it returns from `mem_recv` is fatal, such as a bad client preface.
    private func checkReceived(_ result: Int) throws(HTTP2Error) {
        guard result < 0 else { return }
        failed = true
        throw HTTP2Error(code: Int32(clamping: result))
    }

    /// Hands the events produced since the last call to `body`, oldest first,
    /// including any raised while `body` runs.
    public func drainEvents(_ body: (HTTP2Event) -> Void) {
        precondition(!isDrainingEvents, "drainEvents is not reentrant")
        isDrainingEvents = true
        defer { isDrainingEvents = false }
        var index = 0
        while index < events.count {
            // Moved out, leaving an event without payload in its place: handing
            // an event over then costs no reference counting.
            var event = HTTP2Event.pingAcknowledged
            swap(&event, &events[index])
            index += 1
            body(event)
        }
        // A burst (a client opening hundreds of streams at once) should not pin
        // its buffer to an idle connection.
        events.removeAll(keepingCapacity: events.capacity <= Self.retainedEventCapacity)
    }

    private static let retainedEventCapacity = 256

    public var hasEvents: Bool { !events.isEmpty }

    /// Gives `byteCount` bytes of a stream's received data back to its
    /// sender's window (see `consumesStreamDataManually`); nothing for a
    /// stream that is gone.
    public func consume(streamID: Int32, byteCount: Int) {
        // Fails only for a closed stream, whose window no longer matters, or when out of memory.
        _ = nghttp2_session_consume_stream(session, streamID, byteCount)
    }

    /// Streams we still keep sending state for; tests check it drains to 0.
    var outboundStreamCount: Int { outboundStreams.count }

    // MARK: Output

    /// Hands every byte nghttp2 has ready to `write`. nghttp2 serializes one
    /// frame per call; the frames are gathered into as few chunks as fit a
    /// small stack buffer, since a write costs the owner more than copying a
    /// frame (a unary answer is three frames of about 120 bytes in all). The
    /// buffers are only valid during the call.
    public func drainOutput(_ write: (UnsafeRawBufferPointer) -> Void) throws(HTTP2Error) {
        let failure = withUnsafeTemporaryAllocation(byteCount: Self.gatheredOutputBytes, alignment: 1) { gathering -> HTTP2Error? in
            var gathered = 0
            defer {
                if gathered > 0 { write(UnsafeRawBufferPointer(rebasing: gathering[..<gathered])) }
            }
            while !failed {
                var chunk: UnsafePointer<UInt8>?
                let length = nghttp2_session_mem_send(session, &chunk)
                if length < 0 {
                    return HTTP2Error(code: Int32(length))
                }
                guard length > 0, let chunk else { return nil }
                if gathered + length > gathering.count {
                    if gathered > 0 {
                        write(UnsafeRawBufferPointer(rebasing: gathering[..<gathered]))
                        gathered = 0
                    }
                    if length > gathering.count {
                        write(UnsafeRawBufferPointer(start: chunk, count: length))
                        continue
                    }
                }
                (gathering.baseAddress! + gathered).copyMemory(from: chunk, byteCount: length)
                gathered += length
            }
            return nil
        }
        if let failure { throw failure }
    }

    /// The most `withUnsafeTemporaryAllocation` always takes from the stack;
    /// past it, it may call malloc.
    private static let gatheredOutputBytes = 1024

    /// False once the session has nothing more to read or write, e.g. after a
    /// GOAWAY went out: the connection should then be closed.
    public var isActive: Bool {
        !failed && (nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0)
    }

    // MARK: Sending

    /// Sends response headers, then `body` and `trailers` if given. Without a
    /// body and trailers, the headers end the stream (a "trailers-only" reply).
    /// With `resetAfterSending`, a peer still sending its request is then told to
    /// stop with RST_STREAM of that code, after the response is out: resetting
    /// first would make nghttp2 drop the response.
    public func sendResponse(
        streamID: Int32,
        headers: [HTTP2Header],
        body: [UInt8]? = nil,
        trailers: [HTTP2Header]? = nil,
        resetAfterSending: UInt32? = nil
    ) throws(HTTP2Error) {
        try sendResponse(
            streamID: streamID,
            headers: HTTP2HeaderBlock(headers),
            body: body,
            trailers: trailers.map(HTTP2HeaderBlock.init),
            resetAfterSending: resetAfterSending
        )
    }

    /// ``sendResponse(streamID:headers:body:trailers:resetAfterSending:)`` with prepared blocks.
    public func sendResponse(
        streamID: Int32,
        headers: HTTP2HeaderBlock,
        body: [UInt8]? = nil,
        trailers: HTTP2HeaderBlock? = nil,
        resetAfterSending: UInt32? = nil
    ) throws(HTTP2Error) {
        // A stream the peer reset in the same read as its request is gone from
        // nghttp2, which would drop the response silently; keeping state for it
        // would leak. Its close event already reports the response undelivered.
        guard nghttp2_session_find_stream(session, streamID) != nil else { return }
        let hasBody = body != nil || trailers != nil
        outboundStreams[streamID] = OutboundStream(
            body: hasBody ? OutboundBody(bytes: body ?? [], trailers: trailers) : nil,
            resetAfterResponse: resetAfterSending
        )
        var provider = Self.dataProvider
        let result = headers.withFields { fields, count in
            hasBody
                ? nghttp2_submit_response(session, streamID, fields, count, &provider)
                : nghttp2_submit_response(session, streamID, fields, count, nil)
        }
        if result != 0 {
            outboundStreams.removeValue(forKey: streamID)
            throw HTTP2Error(code: result)
        }
    }

    /// Sends response headers and keeps the stream open for a body that comes
    /// in pieces, each sent with ``sendData(streamID:_:)``, until
    /// ``endStreamingBody(streamID:trailers:)`` ends it: a gRPC
    /// server-streaming call. A stream already gone is ignored, as in
    /// ``sendResponse(streamID:headers:body:trailers:resetAfterSending:)``.
    public func beginStreamingResponse(streamID: Int32, headers: HTTP2HeaderBlock) throws(HTTP2Error) {
        guard nghttp2_session_find_stream(session, streamID) != nil else { return }
        outboundStreams[streamID] = OutboundStream(body: OutboundBody(bytes: [], isOpen: true))
        var provider = Self.dataProvider
        let result = headers.withFields { fields, count in
            nghttp2_submit_response(session, streamID, fields, count, &provider)
        }
        if result != 0 {
            outboundStreams.removeValue(forKey: streamID)
            throw HTTP2Error(code: result)
        }
    }

    /// Queues more of a streamed body; ignored once the stream is gone.
    public func sendData(streamID: Int32, _ bytes: [UInt8]) {
        let queued = outboundStreams.modifyValue(forKey: streamID) { stream -> Bool in
            guard stream.body?.isOpen == true else { return false }
            stream.body!.bytes.append(contentsOf: bytes)
            return true
        } ?? false
        if queued { resumeBody(streamID) }
    }

    /// Ends a streamed body, with `trailers` if given, once what was queued is
    /// out; with `resetAfterSending`, as in ``sendResponse(streamID:headers:body:trailers:resetAfterSending:)``.
    public func endStreamingBody(streamID: Int32, trailers: HTTP2HeaderBlock?, resetAfterSending: UInt32? = nil) {
        let ended = outboundStreams.modifyValue(forKey: streamID) { stream -> Bool in
            guard stream.body?.isOpen == true else { return false }
            stream.body!.isOpen = false
            stream.body!.trailers = trailers
            stream.resetAfterResponse = resetAfterSending
            return true
        } ?? false
        if ended { resumeBody(streamID) }
    }

    /// Bytes of a streamed body queued and not yet handed to nghttp2, which
    /// sends them as the peer's flow-control window allows.
    public func queuedDataCount(streamID: Int32) -> Int {
        guard let body = outboundStreams[streamID]?.body else { return 0 }
        return body.bytes.count - body.offset
    }

    /// Asks for one ``HTTP2Event/queuedDataSent(streamID:)`` once the
    /// streamed body queued so far has gone to nghttp2.
    public func reportWhenQueuedDataSent(streamID: Int32) {
        outboundStreams.modifyValue(forKey: streamID) { $0.reportsQueuedDataSent = true }
    }

    private func resumeBody(_ streamID: Int32) {
        // Fails only when nghttp2 is not waiting on this body, and then it
        // reads the body by itself.
        _ = nghttp2_session_resume_data(session, streamID)
    }

    /// Opens a stream with `headers` whose body follows in pieces, each sent
    /// with ``sendData(streamID:_:)``, until ``endStreamingBody(streamID:trailers:resetAfterSending:)``
    /// with no trailers ends it: a client-streaming call. Client role.
    public func beginStreamingRequest(headers: HTTP2HeaderBlock) throws(HTTP2Error) -> Int32 {
        var provider = Self.dataProvider
        let streamID = headers.withFields { fields, count in
            nghttp2_submit_request(session, nil, fields, count, &provider, nil)
        }
        if streamID < 0 {
            throw HTTP2Error(code: streamID)
        }
        outboundStreams[streamID] = OutboundStream(body: OutboundBody(bytes: [], isOpen: true))
        return streamID
    }

    /// Opens a stream with `headers` and sends `body`, ending the stream. Client role.
    public func sendRequest(headers: [HTTP2Header], body: [UInt8]?) throws(HTTP2Error) -> Int32 {
        try sendRequest(headers: HTTP2HeaderBlock(headers), body: body)
    }

    /// ``sendRequest(headers:body:)`` with a prepared block.
    public func sendRequest(headers: HTTP2HeaderBlock, body: [UInt8]?) throws(HTTP2Error) -> Int32 {
        var provider = Self.dataProvider
        let streamID = headers.withFields { fields, count -> Int32 in
            body == nil
                ? nghttp2_submit_request(session, nil, fields, count, nil, nil)
                : nghttp2_submit_request(session, nil, fields, count, &provider, nil)
        }
        if streamID < 0 {
            throw HTTP2Error(code: streamID)
        }
        outboundStreams[streamID] = OutboundStream(body: body.map { OutboundBody(bytes: $0) })
        return streamID
    }

    /// Resets one stream; the connection carries on.
    public func resetStream(_ streamID: Int32, errorCode: UInt32) {
        // Fails only for a stream that is already closed, which is what we wanted.
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Queues a PING; the peer's ACK arrives as ``HTTP2Event/pingAcknowledged``.
    public func sendPing() throws(HTTP2Error) {
        lastPingOpaque &+= 1
        var opaque = lastPingOpaque.bigEndian
        let result = withUnsafeBytes(of: &opaque) {
            nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), $0.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        try check(result)
    }

    /// Queues a GOAWAY that refuses streams after `lastStreamID` while those up
    /// to it finish; the session becomes inactive once they have.
    public func sendGoAway(lastStreamID: Int32, errorCode: UInt32) {
        // Fails only once a GOAWAY has gone out, which is what we wanted.
        _ = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, errorCode, nil, 0)
    }

    /// Queues a GOAWAY; once it is drained the session is no longer active.
    public func terminate(errorCode: UInt32) {
        _ = nghttp2_session_terminate_session(session, errorCode)
    }

    // MARK: nghttp2 callbacks

    /// Runs `body` on the connection `userData` names. nghttp2 calls back only
    /// from within a call on the connection, which keeps it alive, so the
    /// callback borrows it rather than retaining and releasing it.
    private static func with<Result>(_ userData: UnsafeMutableRawPointer?, _ body: (HTTP2Connection) -> Result) -> Result {
        Unmanaged<HTTP2Connection>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
    }

    private func beginHeaders(_ streamID: Int32) -> Int32 {
        // A gRPC request's fields take about 300 bytes: one allocation holds them.
        inboundHeaders = InboundHeaderBlock(streamID: streamID, fields: HTTP2HeaderFields(reservingCapacity: 512))
        return 0
    }

    private func header(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Int32 {
        guard inboundHeaders.streamID == streamID else { return 0 }
        inboundHeaders.size += name.count + value.count + 32
        guard inboundHeaders.size <= Int(settings.maxHeaderListSize) else {
            // Resets only this stream (nghttp2 answers with RST_STREAM) and
            // skips the rest of its block, so this is reported once.
            events.append(.headerListTooLarge(streamID: streamID))
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        inboundHeaders.fields.append(name: name, value: value)
        return 0
    }

    private func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let header = frame.pointee.hd
        let endsStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            let fields = inboundHeaders.streamID == header.stream_id ? inboundHeaders.fields : HTTP2HeaderFields()
            inboundHeaders = InboundHeaderBlock(streamID: 0)
            events.append(.headers(streamID: header.stream_id, headers: fields))
            if endsStream { events.append(.endStream(streamID: header.stream_id)) }
        case NGHTTP2_DATA.rawValue:
            if endsStream { events.append(.endStream(streamID: header.stream_id)) }
        case NGHTTP2_PING.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
                events.append(.pingAcknowledged)
            }
        case NGHTTP2_GOAWAY.rawValue:
            events.append(.goAway(lastStreamID: frame.pointee.goaway.last_stream_id, errorCode: frame.pointee.goaway.error_code))
        case NGHTTP2_RST_STREAM.rawValue:
            // nghttp2 forgets closed streams at once (`no_closed_streams`), so
            // a reset of a stream it no longer knows came after our side ended it.
            if nghttp2_session_find_stream(session, header.stream_id) == nil {
                events.append(.resetAfterClose(streamID: header.stream_id))
            }
        default:
            break
        }
        return 0
    }

    private func frameSent(_ frame: UnsafePointer<nghttp2_frame>) -> Int32 {
        let header = frame.pointee.hd
        guard header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 else { return 0 }
        let type = UInt32(header.type)
        guard type == NGHTTP2_HEADERS.rawValue || type == NGHTTP2_DATA.rawValue else { return 0 }
        let resetCode = outboundStreams.modifyValue(forKey: header.stream_id) { stream -> UInt32? in
            stream.isLocallyEnded = true
            defer { stream.resetAfterResponse = nil }
            return stream.resetAfterResponse
        }
        if let code = resetCode ?? nil,
           nghttp2_session_get_stream_remote_close(session, header.stream_id) == 0 {
            _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), header.stream_id, code)
        }
        return 0
    }

    private func streamClosed(_ streamID: Int32, errorCode: UInt32) -> Int32 {
        if inboundHeaders.streamID == streamID {
            inboundHeaders = InboundHeaderBlock(streamID: 0)
        }
        let endedHere = outboundStreams.removeValue(forKey: streamID)?.isLocallyEnded ?? false
        // A peer may reset with NO_ERROR; if our side had not finished, the
        // stream did not complete and must not look like it did.
        let reportedCode = errorCode == NGHTTP2_NO_ERROR.rawValue && !endedHere ? NGHTTP2_CANCEL.rawValue : errorCode
        events.append(.streamClosed(streamID: streamID, errorCode: reportedCode))
        return 0
    }

    private static let dataProvider = nghttp2_data_provider(
        source: nghttp2_data_source(ptr: nil),
        read_callback: { _, streamID, buffer, length, flags, _, userData in
            HTTP2Connection.with(userData) { $0.readBody(streamID: streamID, into: buffer!, capacity: length, flags: flags!) }
        }
    )

    private func readBody(streamID: Int32, into buffer: UnsafeMutablePointer<UInt8>, capacity: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        typealias Chunk = (count: Int, trailers: HTTP2HeaderBlock?, isLast: Bool)
        let chunk: Chunk = outboundStreams.modifyValue(forKey: streamID) { stream -> Chunk in
            guard let body = stream.body else { return (0, nil, true) }
            let count = min(capacity, body.bytes.count - body.offset)
            body.bytes.withUnsafeBufferPointer { source in
                buffer.update(from: source.baseAddress! + body.offset, count: count)
            }
            if body.offset + count == body.bytes.count {
                if body.isOpen {
                    // Assigned rather than emptied: `body` still shares the
                    // old buffer, which emptying would copy.
                    stream.body!.bytes = []
                    stream.body!.offset = 0
                    if stream.reportsQueuedDataSent {
                        stream.reportsQueuedDataSent = false
                        events.append(.queuedDataSent(streamID: streamID))
                    }
                    return (count, nil, false)
                }
                stream.body = nil
                return (count, body.trailers, true)
            }
            stream.body!.offset += count
            return (count, nil, false)
        } ?? (0, nil, true)
        guard chunk.isLast else {
            // An open body with nothing queued waits for sendData or its end.
            return chunk.count == 0 ? Int(NGHTTP2_ERR_DEFERRED.rawValue) : chunk.count
        }
        flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue
        if let trailers = chunk.trailers {
            flags.pointee |= NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            let result = trailers.withFields { nghttp2_submit_trailer(session, streamID, $0, $1) }
            if result != 0 {
                return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
            }
        }
        return chunk.count
    }
}

private func check(_ result: Int32) throws(HTTP2Error) {
    if result < 0 {
        throw HTTP2Error(code: result)
    }
}
