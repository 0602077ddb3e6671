import LDLMHTTP2

/// The outcome of one unary call made by a ``GRPCClientConnection``.
public struct GRPCResponse: Sendable {
    public let streamID: Int32
    public let status: GRPCStatus
    /// The response message; nil when the server answered with a status only.
    public let message: [UInt8]?

    public init(streamID: Int32, status: GRPCStatus, message: [UInt8]?) {
        self.streamID = streamID
        self.status = status
        self.message = message
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
    private var calls: [Int32: CallState] = [:]

    private struct CallState {
        var headers: [HTTP2Header]?
        var trailers: [HTTP2Header]?
        var body: [UInt8] = []
    }

    public init(authority: String, http2Settings: HTTP2Settings = HTTP2Settings()) throws(HTTP2Error) {
        self.authority = authority
        self.http2 = try HTTP2Connection(role: .client, settings: http2Settings)
    }

    /// Starts a unary call; its ``GRPCResponse`` arrives as an event.
    public func startCall(
        path: String,
        message: [UInt8],
        metadata: [HTTP2Header] = [],
        timeoutNanoseconds: UInt64? = nil
    ) throws(HTTP2Error) -> Int32 {
        var headers = [
            HTTP2Header(":method", "POST"),
            HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", path),
            HTTP2Header(":authority", authority),
            HTTP2Header("content-type", "application/grpc"),
            HTTP2Header("te", "trailers"),
        ]
        if let timeoutNanoseconds {
            headers.append(HTTP2Header("grpc-timeout", formatGRPCTimeout(nanoseconds: timeoutNanoseconds)))
        }
        headers.append(contentsOf: metadata)
        let streamID = try http2.sendRequest(headers: headers, body: GRPCMessageFraming.frame(message))
        calls[streamID] = CallState()
        return streamID
    }

    public func receive(_ bytes: UnsafeRawBufferPointer) throws(HTTP2Error) -> [GRPCClientEvent] {
        try http2.receive(bytes)
        return process(http2.takeEvents())
    }

    public func receive(_ bytes: [UInt8]) throws(HTTP2Error) -> [GRPCClientEvent] {
        try http2.receive(bytes)
        return process(http2.takeEvents())
    }

    /// Events raised while sending.
    public func takeEvents() -> [GRPCClientEvent] {
        guard http2.hasEvents else { return [] }
        return process(http2.takeEvents())
    }

    private func process(_ events: [HTTP2Event]) -> [GRPCClientEvent] {
        var output: [GRPCClientEvent] = []
        for event in events {
            switch event {
            case .headers(let streamID, let headers):
                if calls[streamID]?.headers == nil {
                    calls[streamID]?.headers = headers
                } else {
                    calls[streamID]?.trailers = headers
                }
            case .data(let streamID, let bytes):
                calls[streamID]?.body.append(contentsOf: bytes)
            case .endStream:
                break
            case .streamClosed(let streamID, let errorCode):
                guard let call = calls.removeValue(forKey: streamID) else { continue }
                output.append(.response(Self.response(streamID: streamID, call: call, errorCode: errorCode)))
            case .pingAcknowledged:
                output.append(.pingAcknowledged)
            case .goAway:
                output.append(.goAway)
            }
        }
        return output
    }

    private static func response(streamID: Int32, call: CallState, errorCode: UInt32) -> GRPCResponse {
        // A trailers-only response carries grpc-status in its headers.
        let statusFields = call.trailers ?? call.headers ?? []
        guard let statusText = statusFields.first(named: "grpc-status") else {
            let httpStatus = call.headers?.first(named: ":status") ?? "none"
            let reason = errorCode != 0 ? "stream reset with HTTP/2 error \(errorCode)" : "no grpc-status (HTTP status \(httpStatus))"
            return GRPCResponse(streamID: streamID, status: GRPCStatus(errorCode != 0 ? .unavailable : .internal, reason), message: nil)
        }
        let code = Int(statusText).flatMap(GRPCStatus.Code.init(rawValue:)) ?? .unknown
        let message = GRPCPercentEncoding.decode(statusFields.first(named: "grpc-message") ?? "")
        var payload: [UInt8]?
        if call.body.count >= GRPCMessageFraming.prefixLength {
            payload = Array(call.body[GRPCMessageFraming.prefixLength...])
        }
        return GRPCResponse(streamID: streamID, status: GRPCStatus(code, message), message: payload)
    }
}
