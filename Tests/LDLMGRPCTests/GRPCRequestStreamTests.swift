@testable import LDLMGRPC
@testable import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// Calls whose client streams (client-streaming and bidirectional): each
/// request message reaches the owner as it arrives, however HTTP/2 frames
/// split or join them; the half-close follows the last one; and a client that
/// sends without reading the answers is held back by flow control.
final class GRPCRequestStreamTests: XCTestCase {
    private static let path = "/test.Echo/Chat"

    /// Records what the connection hands it and answers as the test asks.
    private final class Receiver {
        var messages: [[UInt8]] = []
        var ended = false
        var cancelled = false
        var onMessage: (ArraySlice<UInt8>) -> Void = { _ in }

        var receiver: GRPCRequestStreamReceiver {
            GRPCRequestStreamReceiver(
                call: GRPCDeferredCall(deadline: nil) { [self] in
                    cancelled = true
                    return true
                },
                receive: { [self] message in
                    messages.append(Array(message))
                    onMessage(message)
                },
                clientEnded: { [self] in ended = true }
            )
        }
    }

    private func openStream(_ pair: GRPCPair, file: StaticString = #filePath, line: UInt = #line) throws -> (Int32, Receiver) {
        let headers = HTTP2HeaderBlock([
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", Self.path),
            HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ])
        let streamID = try pair.client.beginStreamingRequest(headers: headers)
        try pair.pump()
        let opened = pair.takeServerEvents().requestStreams
        XCTAssertEqual(opened.map(\.streamID), [streamID], "the call is handed over at its headers", file: file, line: line)
        XCTAssertEqual(opened.first?.path, Self.path, file: file, line: line)
        let receiver = Receiver()
        pair.server.acceptRequestStream(streamID: streamID, receiver.receiver)
        return (streamID, receiver)
    }

    func testAMessageSplitAcrossFramesArrivesOnceWhole() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        let framed = GRPCMessageFraming.frame([1, 2, 3, 4, 5, 6, 7, 8])
        pair.client.sendData(streamID: streamID, Array(framed[..<3]))
        try pair.pump()
        pair.client.sendData(streamID: streamID, Array(framed[3..<9]))
        try pair.pump()
        XCTAssertEqual(receiver.messages, [], "nothing until the message is whole")
        pair.client.sendData(streamID: streamID, Array(framed[9...]))
        try pair.pump()
        XCTAssertEqual(receiver.messages, [[1, 2, 3, 4, 5, 6, 7, 8]])
        XCTAssertFalse(receiver.ended)
    }

    func testManyMessagesInOneFrameArriveInOrderThenTheHalfClose() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        let messages: [[UInt8]] = [[1], [], [2, 2], Array(repeating: 3, count: 300)]
        pair.client.sendData(streamID: streamID, messages.flatMap(GRPCMessageFraming.frame))
        try pair.pump()
        XCTAssertEqual(receiver.messages, messages)
        XCTAssertFalse(receiver.ended, "the client has not half-closed yet")

        pair.client.endStreamingBody(streamID: streamID, trailers: nil)
        try pair.pump()
        XCTAssertTrue(receiver.ended)
        XCTAssertFalse(receiver.cancelled)
    }

    func testAnswersGoOutAsMessagesArriveAndTheStatusEndsTheCall() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        receiver.onMessage = { message in
            pair.server.sendMessage(streamID: streamID, prefixedMessage: GRPCMessageFraming.frame(message.map { $0 &* 2 }))
        }
        pair.client.sendData(streamID: streamID, GRPCMessageFraming.frame([1]))
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: streamID).body, GRPCMessageFraming.frame([2]), "answered before the client half-closed")
        XCTAssertEqual(pair.outcome(of: streamID).httpStatus, "200")

        pair.client.sendData(streamID: streamID, GRPCMessageFraming.frame([3]))
        pair.client.endStreamingBody(streamID: streamID, trailers: nil)
        try pair.pump()
        XCTAssertTrue(receiver.ended)
        pair.server.sendStatus(streamID: streamID, GRPCStatus(.ok))
        try pair.pump()
        let outcome = pair.outcome(of: streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([2]) + GRPCMessageFraming.frame([6]))
        XCTAssertEqual(outcome.grpcStatus, "0")
        XCTAssertEqual(outcome.closeCode, 0, "closed cleanly, not reset")
        XCTAssertEqual(pair.server.openStreamCount, 0)
        XCTAssertFalse(receiver.cancelled)
    }

    func testClientStreamingCallsOverTheConnectionsLimitAreRefusedUntilOneEnds() throws {
        var limits = GRPCServerLimits()
        limits.maxOpenRequestStreams = 2
        let pair = try GRPCPair(limits: limits, requestStreamPaths: [Self.path])
        let (first, _) = try openStream(pair)
        _ = try openStream(pair)
        let headers = HTTP2HeaderBlock([
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", Self.path),
            HTTP2Header(":authority", "localhost"), HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ])
        let third = try pair.client.beginStreamingRequest(headers: headers)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents().requestStreams.map(\.streamID), [], "the third is not handed over")
        XCTAssertEqual(pair.outcome(of: third).grpcStatus, String(GRPCStatus.Code.resourceExhausted.rawValue))

        pair.server.sendStatus(streamID: first, GRPCStatus(.ok))
        try pair.pump()
        _ = try openStream(pair)
    }

    func testClientResetMidStreamCancelsTheReceiver() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        pair.client.sendData(streamID: streamID, GRPCMessageFraming.frame([1]) + [0, 0, 0])
        try pair.pump()
        pair.client.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        try pair.pump()
        XCTAssertEqual(receiver.messages, [[1]])
        XCTAssertTrue(receiver.cancelled)
        XCTAssertFalse(receiver.ended)
        XCTAssertEqual(pair.server.openStreamCount, 0)
    }

    func testAMessageOverTheLimitIsRefusedByItsPrefixAndTheClientIsStopped() throws {
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = 100
        let pair = try GRPCPair(limits: limits, requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        pair.client.sendData(streamID: streamID, GRPCMessageFraming.frame([1]) + messagePrefix(length: 101))
        try pair.pump()
        XCTAssertEqual(receiver.messages, [[1]], "the messages before it were delivered")
        XCTAssertTrue(receiver.cancelled)
        let outcome = pair.outcome(of: streamID)
        XCTAssertEqual(outcome.grpcStatus, String(GRPCStatus.Code.resourceExhausted.rawValue))
        XCTAssertNotNil(outcome.closeCode, "the client, still sending, is told to stop (RST_STREAM)")

        pair.client.sendData(streamID: streamID, Array(repeating: 0, count: 101))
        try pair.pump()
        XCTAssertEqual(receiver.messages, [[1]])
    }

    func testAStreamEndingInsideAMessageGetsInvalidArgument() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        pair.client.sendData(streamID: streamID, Array(GRPCMessageFraming.frame([1, 2, 3]).dropLast()))
        pair.client.endStreamingBody(streamID: streamID, trailers: nil)
        try pair.pump()
        XCTAssertFalse(receiver.ended)
        XCTAssertTrue(receiver.cancelled)
        XCTAssertEqual(pair.outcome(of: streamID).grpcStatus, String(GRPCStatus.Code.invalidArgument.rawValue))
    }

    func testAClientThatDoesNotReadIsHeldBackByFlowControlAndServedOnceItReads() throws {
        var clientSettings = HTTP2Settings()
        clientSettings.initialWindowSize = 16 * 1024
        let pair = try GRPCPair(requestStreamPaths: [Self.path], clientSettings: clientSettings)
        let (streamID, receiver) = try openStream(pair)
        let answer = Array(repeating: UInt8(7), count: 10_000)
        receiver.onMessage = { _ in
            pair.server.sendMessage(streamID: streamID, prefixedMessage: GRPCMessageFraming.frame(answer))
        }
        // 2 MB, twice the server's stream window: the client must stall.
        let request = GRPCMessageFraming.frame(Array(repeating: 1, count: 995))
        for _ in 0..<2_000 {
            pair.client.sendData(streamID: streamID, request)
        }
        for _ in 0..<200 { try pair.pumpClientOnly() }
        let delivered = receiver.messages.count
        XCTAssertGreaterThan(delivered, 0)
        XCTAssertLessThanOrEqual(delivered, 10, "answers waiting past the limit hold the requests back")
        XCTAssertLessThanOrEqual(pair.server.http2.queuedDataCount(streamID: streamID), GRPCServerLimits().maxQueuedStreamBytes + answer.count + 5)
        XCTAssertLessThan(pair.bytesSentByClient, 1_100_000, "the client ran out of window")

        // The client reads again: every request is answered.
        pair.client.endStreamingBody(streamID: streamID, trailers: nil)
        try pair.pump()
        XCTAssertEqual(receiver.messages.count, 2_000)
        XCTAssertTrue(receiver.ended)
        XCTAssertEqual(pair.outcome(of: streamID).body.count, 2_000 * (answer.count + 5))
    }

    func testUnaryCallsOnTheSameConnectionAreUnchanged() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        _ = try openStream(pair)
        let unary = try pair.dispatchCall(message: [9])
        XCTAssertEqual(Array(unary.message), [9])
        pair.sendResponse(streamID: unary.streamID, message: [8])
        try pair.pump()
        XCTAssertEqual(pair.outcome(of: unary.streamID).body, GRPCMessageFraming.frame([8]))
    }

    func testDrainEndsAnAcceptedRequestStream() throws {
        let pair = try GRPCPair(requestStreamPaths: [Self.path])
        let (streamID, receiver) = try openStream(pair)
        pair.server.failDeferredCalls(GRPCStatus(.unavailable, "server is shutting down"))
        try pair.pump()
        XCTAssertTrue(receiver.cancelled)
        XCTAssertEqual(pair.outcome(of: streamID).grpcStatus, String(GRPCStatus.Code.unavailable.rawValue))
    }
}
