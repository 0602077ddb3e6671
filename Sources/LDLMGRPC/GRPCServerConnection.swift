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
}

/// What the owner of a ``GRPCServerConnection`` has to act on.
public enum GRPCServerEvent: Sendable {
    case request(GRPCRequest)
    /// A stream that produced a `.request` is gone. `responseDelivered` is false
    /// when it closed before our whole response went out (reset by the client,
    /// connection failure): any effect of that response must be undone.
    case requestEnded(streamID: Int32, responseDelivered: Bool)
    case pingAcknowledged
    case goAway
}

public struct GRPCServerLimits: Sendable {
    public var maxMessageBytes = 4 * 1024 * 1024

    public init() {}
}

/// The server side of gRPC unary calls on one HTTP/2 connection.
///
/// Checks what every call must get right before its owner sees it (method,
/// content type, timeout syntax, message framing and size) and answers those
/// failures itself; the owner routes `.request` events and answers with
/// ``sendResponse(streamID:prefixedMessage:)`` or ``sendStatus(streamID:_:)``.
public final class GRPCServerConnection {
    public let http2: HTTP2Connection
    private let limits: GRPCServerLimits
    private var streams = StreamIDMap<StreamState>()
    /// Paths this connection has seen, so a request reuses a String rather than
    /// building one. Bounded: a client inventing paths gets fresh Strings.
    private var knownPaths: [String] = []
    private static let maxKnownPaths = 8

    private struct StreamState {
        enum Phase {
            /// Headers accepted, body arriving.
            case receiving
            /// Handed to the owner as a `.request`.
            case dispatched
            /// Answered; the response is on its way.
            case answered(dispatched: Bool)
        }

        var phase: Phase
        var path = ""
        var headers = HTTP2HeaderFields()
        var timeout: UInt64?
        var body: UnaryMessageAccumulator

        init(phase: Phase, maxMessageBytes: Int) {
            self.phase = phase
            self.body = UnaryMessageAccumulator(maxMessageBytes: maxMessageBytes)
        }
    }

    public init(limits: GRPCServerLimits = GRPCServerLimits(), http2Settings: HTTP2Settings = HTTP2Settings()) throws(HTTP2Error) {
        self.limits = limits
        self.http2 = try HTTP2Connection(role: .server, settings: http2Settings)
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

    /// Answers a dispatched request with a message and status OK. The message
    /// was serialized after ``GRPCMessageFraming/prefixLength`` reserved bytes,
    /// which this fills in, so the response is sent without another copy.
    public func sendResponse(streamID: Int32, prefixedMessage: [UInt8]) {
        guard markAnswered(streamID) else { return }
        var framed = prefixedMessage
        GRPCMessageFraming.writePrefix(into: &framed)
        do {
            try http2.sendResponse(
                streamID: streamID,
                headers: Self.responseHeaders,
                body: framed,
                trailers: Self.okTrailers
            )
        } catch {
            http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
        }
    }

    /// Answers with a status and no message (a "trailers-only" response).
    public func sendStatus(streamID: Int32, _ status: GRPCStatus) {
        let stillReceiving: Bool
        if case .receiving = streams[streamID]?.phase { stillReceiving = true } else { stillReceiving = false }
        guard markAnswered(streamID) else { return }
        streams[streamID]?.body = UnaryMessageAccumulator(maxMessageBytes: limits.maxMessageBytes)
        sendTrailersOnly(streamID: streamID, httpStatus: "200", status: status, stopClient: stillReceiving)
    }

    /// True while the stream waits for our answer.
    public func isAwaitingResponse(_ streamID: Int32) -> Bool {
        if case .dispatched = streams[streamID]?.phase { return true }
        return false
    }

    // MARK: Private

    private static let responseHeaders = HTTP2HeaderBlock([HTTP2Header(":status", "200"), HTTP2Header("content-type", "application/grpc")])
    private static let okTrailers = HTTP2HeaderBlock([HTTP2Header("grpc-status", "0")])

    private func markAnswered(_ streamID: Int32) -> Bool {
        guard let state = streams[streamID] else { return false }
        switch state.phase {
        case .receiving:
            streams[streamID]?.phase = .answered(dispatched: false)
            return true
        case .dispatched:
            streams[streamID]?.phase = .answered(dispatched: true)
            return true
        case .answered:
            return false
        }
    }

    private func sendTrailersOnly(streamID: Int32, httpStatus: String, status: GRPCStatus, stopClient: Bool) {
        var headers = [
            HTTP2Header(":status", httpStatus),
            HTTP2Header("content-type", "application/grpc"),
            HTTP2Header("grpc-status", String(status.code.rawValue)),
        ]
        if !status.message.isEmpty {
            headers.append(HTTP2Header("grpc-message", GRPCPercentEncoding.encode(status.message)))
        }
        do {
            // A client still sending a body we will never read is told to stop.
            try http2.sendResponse(streamID: streamID, headers: headers, resetAfterSending: stopClient ? HTTP2ErrorCode.noError : nil)
        } catch {
            http2.resetStream(streamID, errorCode: HTTP2ErrorCode.internalError)
        }
    }

    private func process(_ event: HTTP2Event, _ onEvent: (GRPCServerEvent) -> Void) {
        switch event {
        case .headers(let streamID, let headers):
            if streams[streamID] == nil {
                begin(streamID: streamID, headers: headers)
            }
        case .data(let streamID, let bytes):
            guard case .receiving = streams[streamID]?.phase else { return }
            do {
                try streams[streamID]?.body.append(bytes)
            } catch {
                sendStatus(streamID: streamID, error)
            }
        case .endStream(let streamID):
            guard let state = streams[streamID], case .receiving = state.phase else { return }
            do {
                let message = try state.body.message()
                // The request carries what the owner needs; a queued Lock may
                // wait long, so the stream keeps no copy of its headers or body.
                streams[streamID] = StreamState(phase: .dispatched, maxMessageBytes: limits.maxMessageBytes)
                onEvent(.request(GRPCRequest(streamID: streamID, path: state.path, headers: state.headers, timeoutNanoseconds: state.timeout, message: message)))
            } catch {
                sendStatus(streamID: streamID, error)
            }
        case .streamClosed(let streamID, let errorCode):
            guard let state = streams.removeValue(forKey: streamID) else { return }
            switch state.phase {
            case .dispatched:
                onEvent(.requestEnded(streamID: streamID, responseDelivered: false))
            case .answered(dispatched: true):
                onEvent(.requestEnded(streamID: streamID, responseDelivered: errorCode == HTTP2ErrorCode.noError))
            case .receiving, .answered(dispatched: false):
                break
            }
        case .pingAcknowledged:
            onEvent(.pingAcknowledged)
        case .goAway:
            onEvent(.goAway)
        }
    }

    private func begin(streamID: Int32, headers: HTTP2HeaderFields) {
        var isPost = false
        var method: String?
        var path: String?
        var hasContentType = false
        /// Built only when the value is not the usual `application/grpc`.
        var unusualContentType: String?
        var timeoutText: String?
        headers.forEach { name, value in
            if name.matches(":method") {
                isPost = value.matches("POST")
                method = String(decoding: value, as: UTF8.self)
            } else if name.matches(":path") {
                path = internedPath(value)
            } else if name.matches("content-type") {
                hasContentType = true
                unusualContentType = value.matches("application/grpc") ? nil : String(decoding: value, as: UTF8.self)
            } else if name.matches("grpc-timeout") {
                timeoutText = String(decoding: value, as: UTF8.self)
            }
        }
        // An answered stream still needs state so its late DATA frames are ignored.
        var state = StreamState(phase: .answered(dispatched: false), maxMessageBytes: limits.maxMessageBytes)
        streams[streamID] = state
        guard isPost else {
            sendTrailersOnly(streamID: streamID, httpStatus: "405", status: GRPCStatus(.unimplemented, "method \(method ?? "(none)") not allowed: gRPC uses POST"), stopClient: true)
            return
        }
        guard hasContentType, unusualContentType.map(Self.isGRPCContentType) ?? true else {
            sendTrailersOnly(streamID: streamID, httpStatus: "415", status: GRPCStatus(.invalidArgument, "invalid gRPC request content-type \"\(unusualContentType ?? "")\""), stopClient: true)
            return
        }
        if let timeoutText {
            guard let parsed = parseGRPCTimeout(timeoutText) else {
                sendTrailersOnly(streamID: streamID, httpStatus: "200", status: GRPCStatus(.invalidArgument, "malformed grpc-timeout \"\(timeoutText)\""), stopClient: true)
                return
            }
            state.timeout = parsed
        }
        state.phase = .receiving
        state.path = path ?? ""
        state.headers = headers
        streams[streamID] = state
    }

    private func internedPath(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        for known in knownPaths {
            let isSame = known.utf8.withContiguousStorageIfAvailable { $0.hasSameBytes(as: bytes) } ?? false
            if isSame { return known }
        }
        let path = String(decoding: bytes, as: UTF8.self)
        if knownPaths.count < Self.maxKnownPaths {
            knownPaths.append(path)
        }
        return path
    }

    static func isGRPCContentType(_ value: String) -> Bool {
        if value == "application/grpc" || value == "application/grpc+proto" { return true }
        let mediaType = value.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() } ?? ""
        return mediaType == "application/grpc" || mediaType == "application/grpc+proto"
    }
}

/// HTTP/2 error codes (RFC 9113 section 7) used by this layer.
public enum HTTP2ErrorCode {
    public static let noError: UInt32 = 0
    public static let internalError: UInt32 = 2
    public static let cancel: UInt32 = 8
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var trimmed = self
        while trimmed.first == " " || trimmed.first == "\t" { trimmed.removeFirst() }
        while trimmed.last == " " || trimmed.last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
