import LDLMHTTP2

/// A unary gRPC request whose message has fully arrived.
public struct GRPCRequest: Sendable {
    public let streamID: Int32
    /// `:path`, e.g. `/ldlm.LDLM/Lock`.
    public let path: String
    /// Every non-pseudo header, `authorization` included.
    public let metadata: [HTTP2Header]
    /// From `grpc-timeout`; nil when the client set no deadline.
    public let timeoutNanoseconds: UInt64?
    public let message: [UInt8]
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
/// ``sendResponse(streamID:message:)`` or ``sendStatus(streamID:_:)``.
public final class GRPCServerConnection {
    public let http2: HTTP2Connection
    private let limits: GRPCServerLimits
    private var streams: [Int32: StreamState] = [:]
    /// Bodies of streams in `.receiving`, kept apart so appending mutates in place.
    private var bodies: [Int32: UnaryMessageAccumulator] = [:]

    private struct StreamState {
        enum Phase {
            /// Headers accepted, body arriving.
            case receiving(path: String, metadata: [HTTP2Header], timeout: UInt64?)
            /// Handed to the owner as a `.request`.
            case dispatched
            /// Answered; the response is on its way.
            case answered(dispatched: Bool)
        }

        var phase: Phase
    }

    public init(limits: GRPCServerLimits = GRPCServerLimits(), http2Settings: HTTP2Settings = HTTP2Settings()) throws(HTTP2Error) {
        self.limits = limits
        self.http2 = try HTTP2Connection(role: .server, settings: http2Settings)
    }

    /// Processes bytes from the client. Throws on an HTTP/2 protocol error; the
    /// connection must then be drained and closed.
    public func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) -> [GRPCServerEvent] {
        try http2.receive(bytes)
        return process(http2.takeEvents())
    }

    public func receive(_ bytes: [UInt8]) throws(HTTP2Error) -> [GRPCServerEvent] {
        try http2.receive(bytes)
        return process(http2.takeEvents())
    }

    /// Events raised while sending (e.g. a stream that closed once its response went out).
    public func takeEvents() -> [GRPCServerEvent] {
        guard http2.hasEvents else { return [] }
        return process(http2.takeEvents())
    }

    /// Answers a dispatched request with a message and status OK.
    public func sendResponse(streamID: Int32, message: [UInt8]) {
        guard markAnswered(streamID) else { return }
        do {
            try http2.sendResponse(
                streamID: streamID,
                headers: Self.responseHeaders,
                body: GRPCMessageFraming.frame(message),
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
        bodies.removeValue(forKey: streamID)
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

    private func process(_ events: [HTTP2Event]) -> [GRPCServerEvent] {
        var output: [GRPCServerEvent] = []
        for event in events {
            switch event {
            case .headers(let streamID, let headers):
                if streams[streamID] == nil {
                    begin(streamID: streamID, headers: headers)
                }
            case .data(let streamID, let bytes):
                do {
                    try bodies[streamID]?.append(bytes)
                } catch {
                    sendStatus(streamID: streamID, error)
                }
            case .endStream(let streamID):
                guard case .receiving(let path, let metadata, let timeout) = streams[streamID]?.phase,
                      let body = bodies.removeValue(forKey: streamID)
                else { continue }
                do {
                    let message = try body.message()
                    streams[streamID]?.phase = .dispatched
                    output.append(.request(GRPCRequest(streamID: streamID, path: path, metadata: metadata, timeoutNanoseconds: timeout, message: message)))
                } catch {
                    sendStatus(streamID: streamID, error)
                }
            case .streamClosed(let streamID, let errorCode):
                bodies.removeValue(forKey: streamID)
                guard let state = streams.removeValue(forKey: streamID) else { continue }
                switch state.phase {
                case .dispatched:
                    output.append(.requestEnded(streamID: streamID, responseDelivered: false))
                case .answered(dispatched: true):
                    output.append(.requestEnded(streamID: streamID, responseDelivered: errorCode == HTTP2ErrorCode.noError))
                case .receiving, .answered(dispatched: false):
                    break
                }
            case .pingAcknowledged:
                output.append(.pingAcknowledged)
            case .goAway:
                output.append(.goAway)
            }
        }
        return output
    }

    private func begin(streamID: Int32, headers: [HTTP2Header]) {
        var method: String?
        var path: String?
        var contentType: String?
        var timeoutText: String?
        var metadata: [HTTP2Header] = []
        for header in headers {
            switch header.name {
            case ":method": method = header.value
            case ":path": path = header.value
            case "content-type": contentType = header.value
            case "grpc-timeout": timeoutText = header.value
            default:
                if !header.name.hasPrefix(":") { metadata.append(header) }
            }
        }
        // An answered stream still needs state so its late DATA frames are ignored.
        streams[streamID] = StreamState(phase: .answered(dispatched: false))
        guard method == "POST" else {
            sendTrailersOnly(streamID: streamID, httpStatus: "405", status: GRPCStatus(.unimplemented, "method \(method ?? "(none)") not allowed: gRPC uses POST"), stopClient: true)
            return
        }
        guard let contentType, Self.isGRPCContentType(contentType) else {
            sendTrailersOnly(streamID: streamID, httpStatus: "415", status: GRPCStatus(.invalidArgument, "invalid gRPC request content-type \"\(contentType ?? "")\""), stopClient: true)
            return
        }
        var timeout: UInt64?
        if let timeoutText {
            guard let parsed = parseGRPCTimeout(timeoutText) else {
                sendTrailersOnly(streamID: streamID, httpStatus: "200", status: GRPCStatus(.invalidArgument, "malformed grpc-timeout \"\(timeoutText)\""), stopClient: true)
                return
            }
            timeout = parsed
        }
        streams[streamID] = StreamState(phase: .receiving(path: path ?? "", metadata: metadata, timeout: timeout))
        bodies[streamID] = UnaryMessageAccumulator(maxMessageBytes: limits.maxMessageBytes)
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
