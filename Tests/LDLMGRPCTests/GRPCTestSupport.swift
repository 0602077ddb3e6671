@testable import LDLMGRPC
import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// An HTTP/2 client talking to a ``GRPCServerConnection`` over an in-memory wire.
final class GRPCPair {
    let client: HTTP2Connection
    let server: GRPCServerConnection
    private(set) var clientEvents: [HTTP2Event] = []
    private(set) var serverEvents: [GRPCServerEvent] = []
    private(set) var bytesSentByClient = 0
    private var unreadByClient: [UInt8] = []
    /// Streams answered through ``sendResponse(streamID:message:)``, in order,
    /// until ``takeEndings()`` reports their end.
    private var answered: [Int32] = []
    private var undelivered: Set<Int32> = []
    /// How often an answer's undo ran.
    private(set) var undoCount = 0
    var undeliveredStreams: Set<Int32> { undelivered }

    init(
        limits: GRPCServerLimits = GRPCServerLimits(),
        requestStreamPaths: Set<String> = [],
        clientSettings: HTTP2Settings = HTTP2Settings()
    ) throws {
        client = try HTTP2Connection(role: .client, settings: clientSettings)
        server = try GRPCServerConnection(limits: limits, requestStreamPaths: requestStreamPaths)
    }

    /// Carries bytes both ways until neither side has anything left to send.
    func pump(file: StaticString = #filePath, line: UInt = #line) throws {
        if !unreadByClient.isEmpty {
            try client.receive(unreadByClient)
            unreadByClient = []
        }
        for _ in 0..<10_000 {
            let fromClient = try client.drainOutput()
            bytesSentByClient += fromClient.count
            if !fromClient.isEmpty { serverEvents += try server.receive(fromClient) }
            let fromServer = try server.http2.drainOutput()
            serverEvents += server.takeEvents()
            if !fromServer.isEmpty { try client.receive(fromServer) }
            clientEvents += client.takeEvents()
            if fromClient.isEmpty, fromServer.isEmpty { return }
        }
        XCTFail("the connections never went quiet", file: file, line: line)
    }

    /// Answers with `message`, recording whether the answer reached the client.
    func sendResponse(streamID: Int32, message: [UInt8]) {
        if server.isAwaitingResponse(streamID) { answered.append(streamID) }
        server.sendResponse(streamID: streamID, prefixedMessage: GRPCMessageFraming.frame(message)) { [weak self] in
            self?.undelivered.insert(streamID)
            self?.undoCount += 1
        }
    }

    /// Answered calls whose streams have closed since the last call, and
    /// whether each answer was delivered (if not, its undo ran).
    func takeEndings() -> [EndedCall] {
        serverEvents += server.takeEvents()
        let ended = answered.filter { server.streams[$0] == nil }
        answered.removeAll { server.streams[$0] == nil }
        return ended.map { EndedCall(streamID: $0, responseDelivered: !undelivered.contains($0)) }
    }

    /// Carries the client's bytes to the server and keeps the server's from
    /// the client until the next ``pump()``, as for a client that does not read.
    func pumpClientOnly() throws {
        let fromClient = try client.drainOutput()
        bytesSentByClient += fromClient.count
        if !fromClient.isEmpty { serverEvents += try server.receive(fromClient) }
        unreadByClient += try server.http2.drainOutput()
        serverEvents += server.takeEvents()
    }

    func takeServerEvents() -> [GRPCServerEvent] {
        defer { serverEvents.removeAll() }
        return serverEvents
    }

    func takeClientEvents() -> [HTTP2Event] {
        defer { clientEvents.removeAll() }
        return clientEvents
    }

    @discardableResult
    func startCall(
        path: String = "/ldlm.LDLM/Lock",
        method: String = "POST",
        contentType: String? = "application/grpc",
        metadata: [HTTP2Header] = [],
        body: [UInt8]?
    ) throws -> Int32 {
        var headers = [
            HTTP2Header(":method", method),
            HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", path),
            HTTP2Header(":authority", "localhost"),
        ]
        if let contentType { headers.append(HTTP2Header("content-type", contentType)) }
        headers.append(HTTP2Header("te", "trailers"))
        return try client.sendRequest(headers: headers + metadata, body: body)
    }

    /// Sends a call and returns the request the server dispatched for it.
    func dispatchCall(message: [UInt8], metadata: [HTTP2Header] = [], file: StaticString = #filePath, line: UInt = #line) throws -> GRPCRequest {
        let streamID = try startCall(metadata: metadata, body: GRPCMessageFraming.frame(message))
        try pump()
        let requests = takeServerEvents().requests
        XCTAssertEqual(requests.map(\.streamID), [streamID], file: file, line: line)
        return try XCTUnwrap(requests.first, file: file, line: line)
    }

    /// What the client saw of one call.
    func outcome(of streamID: Int32) -> CallOutcome {
        CallOutcome(events: clientEvents.filter { $0.streamID == streamID })
    }
}

struct CallOutcome {
    var headerBlocks: [[HTTP2Header]] = []
    var body: [UInt8] = []
    var ended = false
    var closeCode: UInt32?

    init(events: [HTTP2Event]) {
        for event in events {
            switch event {
            case .headers(_, let headers): headerBlocks.append(headers.fields)
            case .data(_, let bytes): body += bytes
            case .endStream: ended = true
            case .streamClosed(_, let code): closeCode = code
            case .pingAcknowledged, .goAway, .resetAfterClose, .headerListTooLarge, .queuedDataSent: break
            }
        }
    }

    var httpStatus: String? { headerBlocks.first?.first(named: ":status") }
    /// From the trailers, or from the headers of a trailers-only response.
    var grpcStatus: String? { headerBlocks.last?.first(named: "grpc-status") }
    var grpcMessage: String? { headerBlocks.last?.first(named: "grpc-message").map(GRPCPercentEncoding.decode) }
    var isTrailersOnly: Bool { headerBlocks.count == 1 && body.isEmpty && ended }
}

extension GRPCServerConnection {
    func receive(_ bytes: [UInt8]) throws -> [GRPCServerEvent] {
        var events: [GRPCServerEvent] = []
        var failure: HTTP2Error?
        bytes.withUnsafeBytes { bytes in
            do throws(HTTP2Error) {
                try receive(bytes) { events.append($0) }
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return events
    }

    func takeEvents() -> [GRPCServerEvent] {
        var events: [GRPCServerEvent] = []
        drainEvents { events.append($0) }
        return events
    }
}

extension HTTP2Event {
    var streamID: Int32? {
        switch self {
        case .headers(let id, _), .data(let id, _), .endStream(let id), .streamClosed(let id, _): return id
        case .resetAfterClose(let id), .headerListTooLarge(let id), .queuedDataSent(let id): return id
        case .pingAcknowledged, .goAway: return nil
        }
    }
}

extension Array where Element == GRPCServerEvent {
    var requests: [GRPCRequest] {
        compactMap { if case .request(let request) = $0 { return request } else { return nil } }
    }

    var requestStreams: [GRPCRequest] {
        compactMap { if case .requestStream(let request) = $0 { return request } else { return nil } }
    }

}

struct EndedCall: Hashable {
    var streamID: Int32
    var responseDelivered: Bool
}

/// A message prefix with any flag and declared length, for bodies a correct client never sends.
func messagePrefix(compressed flag: UInt8 = 0, length: UInt32) -> [UInt8] {
    [flag] + withUnsafeBytes(of: length.bigEndian, Array.init)
}

extension Array where Element == HTTP2Header {
    /// The value of the first field called `name` (names arrive lower-case in HTTP/2).
    func first(named name: String) -> String? {
        first { $0.name == name }?.value
    }
}
