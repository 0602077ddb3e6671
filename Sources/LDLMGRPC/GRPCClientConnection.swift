import LDLMHTTP2

/// The outcome of one unary call made by a ``GRPCClientConnection``.
public struct GRPCResponse: Sendable {
    public let streamID: Int32
    public let status: GRPCStatus
    /// The response message; nil when the server answered with a status only.
    public let message: ArraySlice<UInt8>?
    /// False when the server surely never acted on the request: it refused
    /// the stream (REFUSED_STREAM, or a GOAWAY's last stream ID below it), or
    /// the call never left this side. Only then may a call that changes
    /// state be sent again elsewhere without risking applying it twice.
    public let mayHaveBeenProcessed: Bool

    public init(streamID: Int32, status: GRPCStatus, message: ArraySlice<UInt8>?, mayHaveBeenProcessed: Bool = true) {
        self.streamID = streamID
        self.status = status
        self.message = message
        self.mayHaveBeenProcessed = mayHaveBeenProcessed
    }
}

public enum GRPCClientEvent: Sendable {
    case response(GRPCResponse)
    case pingAcknowledged
    case goAway
}

/// The client side of gRPC unary calls on one HTTP/2 connection, without I/O:
/// start calls, feed received bytes, collect finished responses.
public final class GRPCClientConnection {
    public let http2: HTTP2Connection
    private let authority: String
    private let scheme: String
    @exclusivity(unchecked)
    private var calls = StreamIDMap<CallState>()
    /// Request headers per path for calls without timeout or metadata, laid
    /// out once. Bounded, like the paths a client uses.
    @exclusivity(unchecked)
    private var plainRequestHeaders: [String: HTTP2HeaderBlock] = [:]
    private static let maxPlainRequestHeaders = 16
    /// The server processes no stream above this (RFC 9113 §6.8); set by its GOAWAY.
    @exclusivity(unchecked)
    private var lastStreamIDTheServerProcesses = Int32.max

    private struct CallState {
        var headers: HTTP2HeaderFields?
        var trailers: HTTP2HeaderFields?
        var body: [UInt8] = []
    }

    /// `scheme` is "https" when the connection runs over TLS.
    public init(authority: String, scheme: String = "http", http2Settings: HTTP2Settings = HTTP2Settings()) throws(HTTP2Error) {
        self.authority = authority
        self.scheme = scheme
        self.http2 = try HTTP2Connection(role: .client, settings: http2Settings)
    }

    /// Starts a unary call; its ``GRPCResponse`` arrives as an event. The
    /// message was serialized after ``GRPCMessageFraming/prefixLength``
    /// reserved bytes, which this fills in.
    public func startCall(
        path: String,
        prefixedMessage: [UInt8],
        metadata: [HTTP2Header] = [],
        timeoutNanoseconds: UInt64? = nil
    ) throws(HTTP2Error) -> Int32 {
        var framed = prefixedMessage
        GRPCMessageFraming.writePrefix(into: &framed)
        let streamID = try http2.sendRequest(
            headers: requestHeaders(path: path, metadata: metadata, timeoutNanoseconds: timeoutNanoseconds),
            body: framed
        )
        calls[streamID] = CallState()
        return streamID
    }

    private func requestHeaders(path: String, metadata: [HTTP2Header], timeoutNanoseconds: UInt64?) -> HTTP2HeaderBlock {
        let isPlain = metadata.isEmpty && timeoutNanoseconds == nil
        if isPlain, let block = plainRequestHeaders[path] {
            return block
        }
        var headers = [
            HTTP2Header(":method", "POST"),
            HTTP2Header(":scheme", scheme),
            HTTP2Header(":path", path),
            HTTP2Header(":authority", authority),
            HTTP2Header("content-type", "application/grpc"),
            HTTP2Header("te", "trailers"),
        ]
        if let timeoutNanoseconds {
            headers.append(HTTP2Header("grpc-timeout", formatGRPCTimeout(nanoseconds: timeoutNanoseconds)))
        }
        headers.append(contentsOf: metadata)
        let block = HTTP2HeaderBlock(headers)
        if isPlain, plainRequestHeaders.count < Self.maxPlainRequestHeaders {
            plainRequestHeaders[path] = block
        }
        return block
    }

    public func receive(_ bytes: UnsafeRawBufferPointer, onEvent: (GRPCClientEvent) -> Void) throws(HTTP2Error) {
        try http2.receive(bytes)
        drainEvents(onEvent)
    }

    /// Handles events raised while sending.
    public func drainEvents(_ onEvent: (GRPCClientEvent) -> Void) {
        http2.drainEvents { process($0, onEvent) }
    }

    private func process(_ event: HTTP2Event, _ onEvent: (GRPCClientEvent) -> Void) {
        switch event {
        case .headers(let streamID, let headers):
            if calls[streamID]?.headers == nil {
                calls[streamID]?.headers = headers
            } else {
                calls[streamID]?.trailers = headers
            }
        case .data(let streamID, let bytes):
            if calls[streamID]?.body.isEmpty == true {
                calls[streamID]?.body = bytes
            } else {
                calls[streamID]?.body.append(contentsOf: bytes)
            }
        case .endStream, .resetAfterClose, .headerListTooLarge, .queuedDataSent:
            break
        case .streamClosed(let streamID, let errorCode):
            guard let call = calls.removeValue(forKey: streamID) else { return }
            let refused = errorCode == HTTP2ErrorCode.refusedStream || streamID > lastStreamIDTheServerProcesses
            onEvent(.response(Self.response(streamID: streamID, call: call, errorCode: errorCode, refused: refused)))
        case .pingAcknowledged:
            onEvent(.pingAcknowledged)
        case .goAway(let lastStreamID, _):
            lastStreamIDTheServerProcesses = min(lastStreamIDTheServerProcesses, lastStreamID)
            onEvent(.goAway)
        }
    }

    private static func response(streamID: Int32, call: CallState, errorCode: UInt32, refused: Bool) -> GRPCResponse {
        // A trailers-only response carries grpc-status in its headers.
        let statusFields = call.trailers ?? call.headers ?? HTTP2HeaderFields()
        guard let statusText = statusFields.value(named: "grpc-status") else {
            let httpStatus = call.headers?.value(named: ":status") ?? "none"
            let reason = errorCode != 0 ? "stream reset with HTTP/2 error \(errorCode)" : "no grpc-status (HTTP status \(httpStatus))"
            return GRPCResponse(
                streamID: streamID,
                status: GRPCStatus(errorCode != 0 ? .unavailable : .internal, reason),
                message: nil,
                mayHaveBeenProcessed: !refused
            )
        }
        let code = Int(statusText).flatMap(GRPCStatus.Code.init(rawValue:)) ?? .unknown
        let message = statusFields.value(named: "grpc-message").map(GRPCPercentEncoding.decode) ?? ""
        var payload: ArraySlice<UInt8>?
        if call.body.count >= GRPCMessageFraming.prefixLength {
            payload = call.body[GRPCMessageFraming.prefixLength...]
        }
        return GRPCResponse(
            streamID: streamID,
            status: GRPCStatus(code, message, trailingMetadata: code == .ok ? [:] : customMetadata(statusFields)),
            message: payload
        )
    }

    /// A failed call's custom trailers: everything but pseudo-headers, `grpc-*` and `content-type`.
    private static func customMetadata(_ fields: HTTP2HeaderFields) -> [String: String] {
        var metadata: [String: String] = [:]
        for field in fields.fields where !field.name.hasPrefix(":") && !field.name.hasPrefix("grpc-") && field.name != "content-type" {
            metadata[field.name] = field.value
        }
        return metadata
    }
}
