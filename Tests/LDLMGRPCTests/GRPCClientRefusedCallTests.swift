import LDLMGRPC
import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// Which failed calls a server surely never acted on: only those may be sent
/// again elsewhere when they change state.
final class GRPCClientRefusedCallTests: XCTestCase {
    private var client: GRPCClientConnection!
    private var server: HTTP2Connection!
    private var responses: [Int32: GRPCResponse] = [:]

    override func setUpWithError() throws {
        client = try GRPCClientConnection(authority: "localhost")
        server = try HTTP2Connection(role: .server)
    }

    private func pump() throws {
        for _ in 0..<100 {
            var fromClient: [UInt8] = []
            try client.drainOutput({ fromClient.append(contentsOf: $0) }, onEvent: record)
            if !fromClient.isEmpty { try server.receive(fromClient) }
            let fromServer = try server.drainOutput()
            if !fromServer.isEmpty { try fromServer.withUnsafeBytes { bytes in try client.receive(bytes, onEvent: record) } }
            if fromClient.isEmpty, fromServer.isEmpty { return }
        }
        XCTFail("the connections never went quiet")
    }

    private func record(_ event: GRPCClientEvent) {
        if case .response(let response) = event { responses[response.streamID] = response }
    }

    private func startCall() throws -> Int32 {
        try client.startCall(path: "/test/Call", prefixedMessage: [0, 0, 0, 0, 0, 1])
    }

    func testCallsAboveTheGoAwayLastStreamWereNotProcessed() throws {
        let taken = try startCall()
        let refused = try startCall()
        try pump()
        server.sendGoAway(lastStreamID: taken, errorCode: HTTP2ErrorCode.noError)
        try pump()
        try server.sendResponse(streamID: taken, headers: [HTTP2Header(":status", "200")], trailers: [HTTP2Header("grpc-status", "14")])
        try pump()

        XCTAssertEqual(responses[refused]?.status.code, .unavailable)
        XCTAssertEqual(responses[refused]?.mayHaveBeenProcessed, false)
        XCTAssertEqual(responses[taken]?.status.code, .unavailable)
        XCTAssertEqual(responses[taken]?.mayHaveBeenProcessed, true, "the server took it: its UNAVAILABLE says nothing about what it did")
    }

    func testARefusedStreamWasNotProcessedAndACancelledOneMayHaveBeen() throws {
        let refused = try startCall()
        let cancelled = try startCall()
        try pump()
        server.resetStream(refused, errorCode: HTTP2ErrorCode.refusedStream)
        server.resetStream(cancelled, errorCode: HTTP2ErrorCode.cancel)
        try pump()

        XCTAssertEqual(responses[refused]?.mayHaveBeenProcessed, false)
        XCTAssertEqual(responses[cancelled]?.mayHaveBeenProcessed, true)
    }
}
