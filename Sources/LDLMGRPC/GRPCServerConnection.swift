import LDLMHTTP2

/// A unary gRPC request whose message has fully arrived.
public struct GRPCRequest: Sendable {
    public let streamID: Int32
    /// `:path`, e.g. `/ldlm.LDLM/Lock`.
    public let path: String
    /// The whole header block; metadata such as `authorization` is looked up by name.
    public let headers: HTTP2HeaderFields
    /// From `grpc-timeout`; nil when the client set no deadline.
    public let timeoutNanoseconds: UInt64?
    /// The message without its 5-byte prefix.
    public let message: ArraySlice<UInt8>

    public init(streamID: Int32, path: String, headers: HTTP2HeaderFields, timeoutNanoseconds: UInt64?, message: ArraySlice<UInt8>) {
        self.streamID = streamID
        self.path = path
        self.headers = headers
        self.timeoutNanoseconds = timeoutNanoseconds
        self.message = message
    }
}

/// What the owner of a ``GRPCServerConnection`` has to act on.
public enum GRPCServerEvent: Sendable {
    case request(GRPCRequest)
    /// A call to a method whose client streams opened; its `message` is
    /// empty, as the messages follow. The owner accepts it with
    /// ``GRPCServerConnection/acceptRequestStream(streamID:_:)`` or refuses it
    /// with ``GRPCServerConnection/sendStatus(streamID:_:)``.
    case requestStream(GRPCRequest)
    case pingAcknowledged
    case goAway
    /// A request's header list was over the limit; its stream was reset.
    case headerListTooLarge(streamID: Int32, limit: UInt32)
}

public struct GRPCServerLimits: Sendable {
    public var maxMessageBytes = 4 * 1024 * 1024
    /// Answers queued on one stream and not yet sent, past which the stream's
    /// next request messages wait (and, unread, hold back its client by flow
    /// control) until they have gone out.
    public var maxQueuedStreamBytes = 64 * 1024
    /// Client-streaming calls open at once on one connection. Each may hold
    /// its stream window (1 MiB) of requests not yet given back, so this
    /// bounds what one connection can make the server buffer.
    public var maxOpenRequestStreams = 16

    public init() {}
}

/// The server side of gRPC calls on one HTTP/2 connection, without I/O.
///
/// Checks what every call must get right before its owner sees it (method,
/// content type, timeout syntax, message framing and size) and answers those
/// failures itself. The owner answers each `.request` at once with
/// ``sendResponse(streamID:prefixedMessage:onUndelivered:)`` or
/// ``sendStatus(streamID:_:)``, or later after ``deferAnswer(streamID:_:)``;
/// a server-streaming call with ``beginStream(streamID:firstMessage:_:)``,
/// any number of ``sendMessage(streamID:prefixedMessage:)`` and a final
/// ``sendStatus(streamID:_:)``. A call to one of `requestStreamPaths` is
/// handed over when its headers arrive (``GRPCServerEvent/requestStream(_:)``)
/// and, once accepted, each request message as it arrives; the owner answers
/// with messages and a status as for a server-streaming call.
/// Every call's state lives here, in one place: a call withdrawn by its client
/// is cancelled, and an answer that never reached its client is undone.
public final class GRPCServerConnection {
    public let http2: HTTP2Connection
    let limits: GRPCServerLimits
    let http2Settings: HTTP2Settings
    @exclusivity(unchecked)
    var streams = StreamIDMap<GRPCServerStream>()
    @exclusivity(unchecked)
    private var deadlines = GRPCCallDeadlines()
    @exclusivity(unchecked)
    private var recentlyDelivered = RecentlyDeliveredAnswers()
    /// Set by ``failDeferredCalls(_:)``: a stream that begins later ends at once with it.
    @exclusivity(unchecked)
    private var drainStatus: GRPCStatus?
    /// Paths this connection has seen, so a request reuses a String rather than
    /// building one, and whether each opens a request stream. Bounded: a
    /// client inventing paths gets fresh Strings. Matched by their bytes, kept
    /// beside the String: reading a String's bytes costs more than comparing them.
    @exclusivity(unchecked)
    var knownPaths: [(bytes: [UInt8], path: String, opensRequestStream: Bool)] = []
    /// The methods whose client streams, by `:path`.
    let requestStreamPaths: Set<String>
    /// Asked once a call's body grows past ``admissionThreshold`` before it
    /// is complete: a status refuses the call at once, so a caller without
    /// credentials cannot make the connection buffer large bodies. Smaller
    /// calls (every LDLM request) are checked by their owner on dispatch,
    /// which costs the common call nothing here.
    public var admission: ((_ streamID: Int32, _ path: String, _ headers: HTTP2HeaderFields) -> GRPCStatus?)?
    public static let admissionThreshold = 16 * 1024
    /// Within a call's `cancel`, the status the connection answers the call
    /// with once it is withdrawn (deadline, drain, an unreadable message);
    /// nil when the withdrawal is the client's doing (reset, gone).
    @exclusivity(unchecked)
    public private(set) var withdrawal: GRPCStatus?
    /// The code of ``withdrawal``.
    public var withdrawalStatus: GRPCStatus.Code? { withdrawal?.code }
    /// The highest stream the client opened; it only grows, so an unchanged
    /// value means no call started in between.
    @exclusivity(unchecked)
    public private(set) var lastStreamID: Int32 = 0

    public init(
        limits: GRPCServerLimits = GRPCServerLimits(),
        http2Settings: HTTP2Settings = HTTP2Settings(),
        requestStreamPaths: Set<String> = []
    ) throws(HTTP2Error) {
        self.limits = limits
        self.http2Settings = http2Settings
        self.requestStreamPaths = requestStreamPaths
        // A request stream's messages may have to wait for its answers to go
        // out; the client is then held back by not giving its window back.
        self.http2 = try HTTP2Connection(role: .server, settings: http2Settings, consumesStreamDataManually: true)
    }

    /// Processes bytes from the client, handing what the owner must act on to
    /// `onEvent`. Throws on an HTTP/2 protocol error; the connection must then
    /// be drained and closed.
    public func receive(_ bytes: UnsafeRawBufferPointer, onEvent: (GRPCServerEvent) -> Void) throws(HTTP2Error) {
        try http2.receive(bytes)
        drainEvents(onEvent)
    }

    /// Handles events raised while sending (e.g. a stream that closed once its response went out).
    public func drainEvents(_ onEvent: (GRPCServerEvent) -> Void) {
        http2.drainEvents { process($0, onEvent) }
    }

    /// Calls whose streams are open, in any state.
    public var openStreamCount: Int { streams.count }

    // MARK: Answering

    /// Answers a dispatched request with a message and status OK. The message
    /// was serialized after ``GRPCMessageFraming/prefixLength`` reserved bytes,
    /// which this fills in, so the response is sent without another copy.
    /// `onUndelivered` runs once if the stream closes before the whole response
    /// reached the client (reset, connection failure): undo its effect there.
    /// False, and nothing sent, when the stream no longer awaits an answer.
    @discardableResult
    public func sendResponse(streamID: Int32, prefixedMessage: [UInt8], onUndelivered: (() -> Void)? = nil) -> Bool {
        let answers = streams.modifyValue(forKey: streamID) { state -> Bool in
            guard state.awaitsAnswer else { return false }
            state = .answered(onUndelivered: onUndelivered)
            return true
        }
        guard answers == true else { return false }
        var framed = prefixedMessage
        GRPCMessageFraming.writePrefix(into: &framed)
        do {
            try http2.sendResponse(streamID: streamID, headers: Self.responseHeaders, body: framed, trailers: Self.okTrailers)
        } catch {
            http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
        }
        return true
    }

    /// Answers a dispatched request with a stream of messages: the response
    /// headers and `firstMessage` (prefixed in place) go out now, each
    /// ``sendMessage(streamID:prefixedMessage:)`` follows, and
    /// ``sendStatus(streamID:_:)`` ends the call. Until then `call.cancel` is
    /// how the connection tells the owner the call ended without it: the
    /// client reset it or left, its deadline passed, or
    /// ``failDeferredCalls(_:)`` ended it.
    public func beginStream(streamID: Int32, firstMessage: [UInt8]?, _ call: GRPCDeferredCall) {
        // A stream that cannot begin is withdrawn, so its owner forgets it.
        guard case .dispatched = streams[streamID] else {
            _ = call.cancel()
            return
        }
        do {
            try http2.beginStreamingResponse(streamID: streamID, headers: Self.responseHeaders)
        } catch {
            http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
            _ = call.cancel()
            return
        }
        // Set even when HTTP/2 already forgot the stream: its close event,
        // still to come, then cancels the call.
        streams[streamID] = .streaming(call)
        if let firstMessage {
            sendMessage(streamID: streamID, prefixedMessage: firstMessage)
        }
        if let drainStatus {
            // Its request completed after the drain ended the others: left
            // open, it would hold the connection until the shutdown timeout.
            _ = withdraw(call, answeringWith: drainStatus)
            sendStatus(streamID: streamID, drainStatus)
        } else if let deadline = call.deadline {
            deadlines.add(deadline, streamID: streamID, liveDeadlines: { deferredCallsWithDeadline })
        }
    }

    /// Takes the messages of a request stream to `receiver`, those already
    /// here first, until its status is sent. A stream that cannot be accepted
    /// (gone, or the server drains) is withdrawn.
    public func acceptRequestStream(streamID: Int32, _ receiver: GRPCRequestStreamReceiver) {
        guard case .requestStream(let stream) = streams[streamID], stream.receiver == nil else {
            _ = receiver.call.cancel()
            return
        }
        stream.receiver = receiver
        if let drainStatus {
            _ = withdraw(receiver.call, answeringWith: drainStatus)
            sendStatus(streamID: streamID, drainStatus)
            return
        }
        if let deadline = receiver.call.deadline {
            deadlines.add(deadline, streamID: streamID, liveDeadlines: { deferredCallsWithDeadline })
        }
        deliverMessages(of: stream, streamID: streamID)
    }

    /// Sends one more message of a streaming call or request stream, prefixed
    /// in place as in ``sendResponse(streamID:prefixedMessage:onUndelivered:)``;
    /// nothing once the call has ended.
    public func sendMessage(streamID: Int32, prefixedMessage: [UInt8]) {
        switch streams[streamID] {
        case .streaming:
            break
        case .requestStream(let stream):
            if !stream.responseBegun {
                stream.responseBegun = true
                do {
                    try http2.beginStreamingResponse(streamID: streamID, headers: Self.responseHeaders)
                } catch {
                    http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
                    return
                }
            }
        default:
            return
        }
        var framed = prefixedMessage
        GRPCMessageFraming.writePrefix(into: &framed)
        http2.sendData(streamID: streamID, framed)
    }

    /// Answers with a status and no message (a "trailers-only" response), or
    /// ends a streaming call with it.
    public func sendStatus(streamID: Int32, _ status: GRPCStatus) {
        guard let state = streams[streamID] else { return }
        switch state {
        case .receiving:
            streams[streamID] = .refused
            // A client still sending a body we will never read is told to stop.
            sendTrailersOnly(streamID: streamID, httpStatus: "200", status: status, stopClient: true)
        case .dispatched, .deferred:
            streams[streamID] = .answered(onUndelivered: nil)
            sendTrailersOnly(streamID: streamID, httpStatus: "200", status: status, stopClient: false)
        case .streaming:
            streams[streamID] = .answered(onUndelivered: nil)
            http2.endStreamingBody(streamID: streamID, trailers: Self.trailers(for: status))
        case .requestStream(let stream):
            streams[streamID] = .answered(onUndelivered: nil)
            // A client still sending is told to stop once the status is out.
            if stream.responseBegun {
                let reset = stream.clientEnded ? nil : HTTP2ErrorCode.noError
                http2.endStreamingBody(streamID: streamID, trailers: Self.trailers(for: status), resetAfterSending: reset)
            } else {
                sendTrailersOnly(streamID: streamID, httpStatus: "200", status: status, stopClient: !stream.clientEnded)
            }
        case .answered, .refused:
            break
        }
    }

    /// The owner will answer `streamID` later, by its deadline if it has one.
    public func deferAnswer(streamID: Int32, _ call: GRPCDeferredCall) {
        guard case .dispatched = streams[streamID] else { return }
        streams[streamID] = .deferred(call)
        if let deadline = call.deadline {
            deadlines.add(deadline, streamID: streamID, liveDeadlines: { deferredCallsWithDeadline })
        }
    }

    /// True while the stream waits for our answer.
    public func isAwaitingResponse(_ streamID: Int32) -> Bool {
        streams[streamID]?.awaitsAnswer ?? false
    }

    // MARK: Deadlines and shutdown

    /// When the earliest deferred call's deadline passes; may be early, never late.
    public var nextDeadline: UInt64? { deadlines.earliest }

    /// Fails every deferred call whose deadline is at or before `now` with
    /// DEADLINE_EXCEEDED, unless its owner answered it meanwhile.
    public func expireDeadlines(now: UInt64) {
        deadlines.popDue(now: now) { streamID in
            guard let call = streams[streamID]?.pendingCall, let deadline = call.deadline, deadline <= now else { return }
            let status = GRPCStatus(.deadlineExceeded, "deadline exceeded while waiting for an answer")
            if withdraw(call, answeringWith: status) {
                sendStatus(streamID: streamID, status)
            }
        }
    }

    /// Withdraws every deferred call and ends every streaming call, answering
    /// each with `status`, e.g. UNAVAILABLE while the server drains: a stream
    /// left open would keep the connection from ever closing.
    public func failDeferredCalls(_ status: GRPCStatus) {
        drainStatus = status
        var deferred: [(Int32, GRPCDeferredCall)] = []
        for (streamID, state) in streams {
            if let call = state.pendingCall { deferred.append((streamID, call)) }
        }
        for (streamID, call) in deferred where withdraw(call, answeringWith: status) {
            sendStatus(streamID: streamID, status)
        }
    }

    /// Tells the client no new calls will be served (GOAWAY naming the last
    /// stream taken); the calls already taken are answered, and the connection
    /// becomes inactive once they are.
    public func closeGracefully() {
        http2.sendGoAway(lastStreamID: lastStreamID, errorCode: HTTP2ErrorCode.noError)
    }

    /// The connection is gone: deferred calls are withdrawn and answers that
    /// did not reach their client are undone, as if each stream was reset.
    public func connectionClosed() {
        let ended = Array(streams.values)
        streams.removeAll()
        recentlyDelivered = RecentlyDeliveredAnswers()
        for state in ended { undoOrCancel(state, delivered: false) }
    }

    var deadlineEntryCount: Int { deadlines.count }

    var deferredCallsWithDeadline: [(UInt64, Int32)] {
        var live: [(UInt64, Int32)] = []
        for (streamID, state) in streams {
            if let deadline = state.pendingCall?.deadline { live.append((deadline, streamID)) }
        }
        return live
    }

    // MARK: Events

    private static let responseHeaders = HTTP2HeaderBlock([HTTP2Header(":status", "200"), HTTP2Header("content-type", "application/grpc")])
    private static let okTrailers = HTTP2HeaderBlock([HTTP2Header("grpc-status", "0")])

    private static func trailers(for status: GRPCStatus) -> HTTP2HeaderBlock {
        HTTP2HeaderBlock(statusFields(status))
    }

    /// `grpc-status`, the percent-encoded `grpc-message` if there is one, and
    /// the status's trailing metadata in name order.
    private static func statusFields(_ status: GRPCStatus) -> [HTTP2Header] {
        var fields = [HTTP2Header("grpc-status", String(status.code.rawValue))]
        if !status.message.isEmpty {
            fields.append(HTTP2Header("grpc-message", GRPCPercentEncoding.encode(status.message)))
        }
        for (name, value) in status.trailingMetadata.sorted(by: { $0.key < $1.key }) {
            fields.append(HTTP2Header(name, value))
        }
        return fields
    }

    private func process(_ event: HTTP2Event, _ onEvent: (GRPCServerEvent) -> Void) {
        switch event {
        case .headers(let streamID, let headers):
            if !streams.contains(streamID) {
                lastStreamID = max(lastStreamID, streamID)
                begin(streamID: streamID, headers: headers, onEvent)
            }
        case .data(let streamID, let bytes):
            receiveData(streamID: streamID, bytes)
        case .endStream(let streamID):
            // The state is changed where it lies: a copy of it would be one more to destroy.
            var request: GRPCRequest?
            var failure: GRPCStatus?
            var requestStream: GRPCRequestStream?
            streams.modifyValue(forKey: streamID) { state in
                switch state {
                case .receiving(let incoming):
                    do throws(GRPCStatus) {
                        let message = try incoming.body.message()
                        let head = incoming.head
                        request = GRPCRequest(streamID: streamID, path: head.path, headers: head.headers, timeoutNanoseconds: head.timeoutNanoseconds, message: message)
                        // The request carries what the owner needs; a queued Lock may
                        // wait long, so the stream keeps no copy of its headers or body.
                        state = .dispatched
                    } catch {
                        failure = error
                    }
                case .requestStream(let stream):
                    requestStream = stream
                default:
                    break
                }
            }
            if let request {
                onEvent(.request(request))
            } else if let failure {
                sendStatus(streamID: streamID, failure)
            } else if let requestStream {
                requestStream.clientEnded = true
                deliverMessages(of: requestStream, streamID: streamID)
            }
        case .streamClosed(let streamID, let errorCode):
            guard let state = streams.removeValue(forKey: streamID) else { return }
            let delivered = errorCode == HTTP2ErrorCode.noError
            if delivered, case .answered(let onUndelivered?) = state {
                recentlyDelivered.remember(streamID, undo: onUndelivered)
            }
            undoOrCancel(state, delivered: delivered)
        case .resetAfterClose(let streamID):
            // The client gave up on the call while our answer was on its way:
            // it dropped the answer unread, so its effect must be undone.
            recentlyDelivered.take(streamID)?()
        case .headerListTooLarge(let streamID):
            onEvent(.headerListTooLarge(streamID: streamID, limit: http2Settings.maxHeaderListSize))
        case .queuedDataSent(let streamID):
            guard case .requestStream(let stream) = streams[streamID], stream.awaitsQueuedAnswers else { return }
            stream.awaitsQueuedAnswers = false
            deliverMessages(of: stream, streamID: streamID)
        case .pingAcknowledged:
            onEvent(.pingAcknowledged)
        case .goAway:
            onEvent(.goAway)
        }
    }

    private func receiveData(streamID: Int32, _ bytes: [UInt8]) {
        var unadmitted: GRPCRequestHead?
        var requestStream: GRPCRequestStream?
        // A unary body is kept whole until it ends, within the message size
        // limit, so its window is given back as it comes; a small one (every
        // LDLM request) never needs it back, as its stream ends well inside
        // the window, which saves the common call a trip into nghttp2.
        var consumed = bytes.count
        var failure: GRPCStatus?
        switch streams[streamID] {
        case .requestStream(let stream):
            requestStream = stream
        case .receiving(let incoming):
            do throws(GRPCStatus) {
                try incoming.body.append(bytes)
                let received = incoming.body.buffer.count
                consumed = received <= Self.admissionThreshold ? 0 : received - bytes.count <= Self.admissionThreshold ? received : bytes.count
                if !incoming.head.admitted, received > Self.admissionThreshold {
                    incoming.head.admitted = true
                    unadmitted = incoming.head
                }
            } catch {
                failure = error
            }
        default:
            break
        }
        if let requestStream {
            requestStream.deframer.append(bytes)
            requestStream.unconsumedByteCount += bytes.count
            deliverMessages(of: requestStream, streamID: streamID)
            return
        }
        if consumed > 0 {
            http2.consume(streamID: streamID, byteCount: consumed)
        }
        if let refusal = failure ?? unadmitted.flatMap({ admission?(streamID, $0.path, $0.headers) }) {
            sendStatus(streamID: streamID, refusal)
        }
    }

    /// Hands the request stream's complete messages to its receiver, then its
    /// end once the client has half-closed, until the answers queued on the
    /// stream pass ``GRPCServerLimits/maxQueuedStreamBytes``: the rest wait
    /// until those are sent, and their bytes are not given back to the
    /// client's window meanwhile, so a client that does not read is stopped
    /// by flow control.
    private func deliverMessages(of stream: GRPCRequestStream, streamID: Int32) {
        // The receiver may end the call, and with it this stream's state.
        func isCurrent() -> Bool {
            if case .requestStream(let current) = streams[streamID], current === stream { return true }
            return false
        }
        while let receiver = stream.receiver, !stream.awaitsQueuedAnswers, isCurrent() {
            let message: ArraySlice<UInt8>?
            do throws(GRPCStatus) {
                message = try stream.deframer.next()
            } catch {
                fail(stream, streamID: streamID, error)
                return
            }
            guard let message else { break }
            let framedLength = GRPCMessageFraming.prefixLength + message.count
            let consumed = min(framedLength, stream.unconsumedByteCount)
            stream.unconsumedByteCount -= consumed
            http2.consume(streamID: streamID, byteCount: consumed)
            receiver.receive(message)
            if http2.queuedDataCount(streamID: streamID) > limits.maxQueuedStreamBytes {
                stream.awaitsQueuedAnswers = true
                http2.reportWhenQueuedDataSent(streamID: streamID)
            }
        }
        guard let receiver = stream.receiver, !stream.awaitsQueuedAnswers, isCurrent() else { return }
        // What is left is part of a message, which may need more than the
        // window to arrive: give its bytes back.
        http2.consume(streamID: streamID, byteCount: stream.unconsumedByteCount)
        stream.unconsumedByteCount = 0
        guard stream.clientEnded, !stream.endDelivered else { return }
        guard stream.deframer.bufferedByteCount == 0 else {
            let count = stream.deframer.bufferedByteCount
            fail(stream, streamID: streamID, GRPCStatus(.invalidArgument, "request message is truncated: the stream ended \(count) bytes into it"))
            return
        }
        stream.endDelivered = true
        receiver.clientEnded()
    }

    /// Ends an accepted request stream the connection cannot go on reading.
    private func fail(_ stream: GRPCRequestStream, streamID: Int32, _ status: GRPCStatus) {
        if stream.receiver.map({ withdraw($0.call, answeringWith: status) }) ?? true {
            sendStatus(streamID: streamID, status)
        }
    }

    /// Withdraws `call`, which the connection then answers with `status`;
    /// see ``withdrawalStatus``.
    private func withdraw(_ call: GRPCDeferredCall, answeringWith status: GRPCStatus) -> Bool {
        withdrawal = status
        defer { withdrawal = nil }
        return call.cancel()
    }

    /// Runs what a call's owner asked for when its stream ends early. Called
    /// after the stream's state is gone, since both may call back into here.
    private func undoOrCancel(_ state: GRPCServerStream, delivered: Bool) {
        switch state {
        case .deferred(let call), .streaming(let call):
            _ = call.cancel()
        case .requestStream(let stream):
            _ = stream.receiver?.call.cancel()
        case .answered(let onUndelivered?) where !delivered:
            onUndelivered()
        case .receiving, .dispatched, .answered, .refused:
            break
        }
    }

    func sendTrailersOnly(streamID: Int32, httpStatus: String, status: GRPCStatus, stopClient: Bool) {
        let headers = [HTTP2Header(":status", httpStatus), HTTP2Header("content-type", "application/grpc")] + Self.statusFields(status)
        do {
            try http2.sendResponse(streamID: streamID, headers: headers, resetAfterSending: stopClient ? HTTP2ErrorCode.noError : nil)
        } catch {
            http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
        }
    }
}
