@testable import LDLMGRPC
import LDLMTestSupport
@testable import LDLMHTTP2
import XCTest

final class GRPCServerConnectionTests: XCTestCase {
    // MARK: Well-formed calls

    func testUnaryCallIsDeliveredWithPathMetadataMessageAndTimeout() throws {
        let pair = try GRPCPair()
        let message: [UInt8] = [0x0a, 0x04, 0x6c, 0x6f, 0x63, 0x6b]
        let metadata = [HTTP2Header("authorization", "s3cret"), HTTP2Header("grpc-timeout", "250m"), HTTP2Header("x-client", "tests")]

        let streamID = try pair.startCall(path: "/ldlm.LDLM/TryLock", metadata: metadata, body: GRPCMessageFraming.frame(message))
        try pair.pump()

        let requests = pair.takeServerEvents().requests
        XCTAssertEqual(requests.count, 1)
        let request = try XCTUnwrap(requests.first)
        XCTAssertEqual(request.streamID, streamID)
        XCTAssertEqual(request.path, "/ldlm.LDLM/TryLock")
        XCTAssertEqual(Array(request.message), message)
        XCTAssertEqual(request.timeoutNanoseconds, 250_000_000)
        XCTAssertEqual(request.headers.value(named: "authorization"), "s3cret")
        XCTAssertEqual(request.headers.value(named: "x-client"), "tests")
        XCTAssertTrue(pair.server.isAwaitingResponse(streamID))
        XCTAssertEqual(pair.takeClientEvents().filter { $0.streamID == streamID }, [], "the client waits for the answer")
    }

    func testCallWithoutGrpcTimeoutHasNoDeadline() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1, 2, 3])
        XCTAssertNil(request.timeoutNanoseconds)
    }

    func testEmptyMessageIsAValidCall() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [])
        XCTAssertEqual(Array(request.message), [])
    }

    func testGRPCContentTypeVariantsAreAccepted() throws {
        let pair = try GRPCPair()
        for contentType in ["application/grpc+proto", "application/grpc; charset=utf-8", "Application/GRPC"] {
            let streamID = try pair.startCall(contentType: contentType, body: GRPCMessageFraming.frame([7]))
            try pair.pump()
            XCTAssertEqual(pair.takeServerEvents().requests.map(\.streamID), [streamID], contentType)
        }
    }

    func testSendResponseDeliversFramedMessageAndStatusOKThenReportsDelivery() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        let reply: [UInt8] = [0x08, 0x01, 0x12, 0x01, 0x61]

        pair.sendResponse(streamID: request.streamID, message: reply)
        let output = try pair.server.http2.drainOutput()
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: true)],
                       "the whole response went out once the output is drained")
        XCTAssertFalse(pair.server.isAwaitingResponse(request.streamID))

        try pair.client.receive(output)
        try pair.pump()
        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.httpStatus, "200")
        XCTAssertEqual(outcome.headerBlocks.first?.first(named: "content-type"), "application/grpc")
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame(reply))
        XCTAssertEqual(outcome.headerBlocks.count, 2, "headers, then trailers")
        XCTAssertEqual(outcome.grpcStatus, "0")
        XCTAssertTrue(outcome.ended)
        XCTAssertEqual(outcome.closeCode, 0)
    }

    func testLargeResponseIsDeliveredIntact() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        let reply = (0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 12) }

        pair.sendResponse(streamID: request.streamID, message: reply)
        try pair.pump()

        let outcome = pair.outcome(of: request.streamID)
        XCTAssertTrue(outcome.body == GRPCMessageFraming.frame(reply))
        XCTAssertEqual(outcome.grpcStatus, "0")
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: true)])
    }

    func testSendStatusAnswersTrailersOnlyWithPercentEncodedMessage() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        let text = "lock \"été\" is 100% gone\r\n🔒"

        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.notFound, text))
        try pair.pump()

        let outcome = pair.outcome(of: request.streamID)
        XCTAssertTrue(outcome.isTrailersOnly)
        XCTAssertEqual(outcome.httpStatus, "200")
        XCTAssertEqual(outcome.grpcStatus, "5")
        let raw = try XCTUnwrap(outcome.headerBlocks.first?.first(named: "grpc-message"))
        XCTAssertTrue(raw.utf8.allSatisfy { (0x20...0x7E).contains($0) }, "header value is printable ASCII: \(raw)")
        XCTAssertEqual(GRPCPercentEncoding.decode(raw), text)
        XCTAssertEqual(pair.server.openStreamCount, 0, "the call is over once its status went out")
    }

    func testSendStatusWithoutMessageOmitsGrpcMessage() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.permissionDenied))
        try pair.pump()
        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.grpcStatus, "7")
        XCTAssertNil(outcome.headerBlocks.first?.first(named: "grpc-message"))
    }

    func testOnlyTheFirstAnswerToACallIsSent() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        pair.sendResponse(streamID: request.streamID, message: [42])
        pair.server.sendStatus(streamID: request.streamID, GRPCStatus(.internal, "second answer"))
        pair.sendResponse(streamID: request.streamID, message: [43])
        try pair.pump()

        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([42]))
        XCTAssertEqual(outcome.grpcStatus, "0")
        XCTAssertEqual(pair.takeEndings().count, 1)
    }

    func testConcurrentCallsAnsweredOutOfOrderReachTheirOwnCallers() throws {
        let pair = try GRPCPair()
        let streamIDs = try (0..<10).map { index in try pair.startCall(body: GRPCMessageFraming.frame([UInt8(index)])) }
        try pair.pump()
        let requests = pair.takeServerEvents().requests
        XCTAssertEqual(Set(requests.map(\.streamID)), Set(streamIDs))

        for request in requests.reversed() {
            pair.sendResponse(streamID: request.streamID, message: Array(request.message) + [0xFF])
        }
        try pair.pump()

        for (index, streamID) in streamIDs.enumerated() {
            XCTAssertEqual(pair.outcome(of: streamID).body, GRPCMessageFraming.frame([UInt8(index), 0xFF]))
        }
        XCTAssertEqual(Set(pair.takeEndings()), Set(streamIDs.map { EndedCall(streamID: $0, responseDelivered: true) }))
    }

    // MARK: Calls that end before their response

    func testClientResetOfDeferredCallWithdrawsIt() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])
        var cancelled = 0
        pair.server.deferAnswer(streamID: request.streamID, GRPCDeferredCall(deadline: nil) { cancelled += 1; return true })

        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.cancel)
        try pair.pump()
        XCTAssertEqual(cancelled, 1, "the owner withdraws a call its client gave up on")
        XCTAssertFalse(pair.server.isAwaitingResponse(request.streamID))

        _ = pair.takeClientEvents()
        pair.sendResponse(streamID: request.streamID, message: [9])
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents(), [], "nothing is sent on a stream that is gone")
        XCTAssertEqual(pair.takeEndings(), [])
        try assertConnectionStillServesCalls(pair)
    }

    func testClientCancelAfterResponseWasQueuedButBeforeItWentOutReportsNotDelivered() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])

        pair.sendResponse(streamID: request.streamID, message: [9])
        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.cancel)
        var events = try pair.server.receive(try pair.client.drainOutput())
        _ = try pair.server.http2.drainOutput()
        events += pair.server.takeEvents()

        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: false)])
    }

    /// RFC 9113 lets a peer reset a stream with NO_ERROR. The queued response
    /// is dropped unsent, so the owner must hear it was not delivered (or it
    /// keeps a lock grant the client never learned about).
    func testRequestResetInTheSameReadIsAnsweredWithoutKeepingStateForIt() throws {
        let pair = try GRPCPair()
        try pair.pump()
        var streamIDs: [Int32] = []
        var wire: [UInt8] = []
        for _ in 0..<50 {
            let streamID = try pair.startCall(body: GRPCMessageFraming.frame([1, 2, 3]))
            wire += try pair.client.drainOutput()
            pair.client.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
            wire += try pair.client.drainOutput()
            streamIDs.append(streamID)
        }
        // Requests, bodies and resets arrive in one read; the owner answers
        // each request as it is handed over, before its reset is processed.
        var events: [GRPCServerEvent] = []
        try wire.withUnsafeBytes { bytes in
            try pair.server.receive(bytes) { event in
                events.append(event)
                if case .request(let request) = event {
                    pair.sendResponse(streamID: request.streamID, message: [9])
                }
            }
        }
        _ = try pair.server.http2.drainOutput()
        XCTAssertEqual(events.requests.map(\.streamID), streamIDs)
        XCTAssertEqual(pair.takeEndings(), streamIDs.map { EndedCall(streamID: $0, responseDelivered: false) },
                       "the grant a response carried must be undone")
        XCTAssertEqual(pair.server.http2.outboundStreamCount, 0, "no state is kept for streams that are gone")
    }

    func testClientResetWithNoErrorBeforeQueuedResponseWentOutReportsNotDelivered() throws {
        let pair = try GRPCPair()
        let request = try pair.dispatchCall(message: [1])

        pair.sendResponse(streamID: request.streamID, message: [9])
        pair.client.resetStream(request.streamID, errorCode: HTTP2ErrorCode.noError)
        var events = try pair.server.receive(try pair.client.drainOutput())
        let output = try pair.server.http2.drainOutput()
        events += pair.server.takeEvents()
        try pair.client.receive(output)

        XCTAssertEqual(CallOutcome(events: pair.client.takeEvents().filter { $0.streamID == request.streamID }).body, [],
                       "the response never reached the client")
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: false)])
    }

    func testResetOfCallStillUploadingProducesNoEvents() throws {
        let pair = try GRPCPair()
        let body = messagePrefix(length: 1_000_000) + Array(repeating: 1, count: 1_000_000)
        let streamID = try pair.startCall(body: body)
        _ = try pair.server.receive(try pair.client.drainOutput())

        pair.client.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents().count, 0, "a call never dispatched ends silently")
        try assertConnectionStillServesCalls(pair)
    }

    // MARK: Calls the connection answers itself

    func testNonGRPCContentTypeGets415AndNoRequest() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(contentType: "text/plain", body: GRPCMessageFraming.frame([1]))
        try assertRejected(streamID, in: pair, httpStatus: "415")
        try assertConnectionStillServesCalls(pair)
    }

    func testMissingContentTypeGets415() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(contentType: nil, body: GRPCMessageFraming.frame([1]))
        try assertRejected(streamID, in: pair, httpStatus: "415")
    }

    func testJSONFlavouredGRPCContentTypeGets415() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(contentType: "application/grpc+json", body: GRPCMessageFraming.frame([1]))
        try assertRejected(streamID, in: pair, httpStatus: "415")
    }

    func testGETGets405AndNoRequest() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(method: "GET", body: nil)
        try assertRejected(streamID, in: pair, httpStatus: "405")
        try assertConnectionStillServesCalls(pair)
    }

    func testMalformedGrpcTimeoutGetsInvalidArgument() throws {
        let pair = try GRPCPair()
        for timeout in ["1x", "123456789S", "S", "-1S", "1.5S"] {
            let streamID = try pair.startCall(metadata: [HTTP2Header("grpc-timeout", timeout)], body: GRPCMessageFraming.frame([1]))
            try assertRejected(streamID, in: pair, grpcStatus: .invalidArgument, messageContains: "grpc-timeout")
            try assertConnectionStillServesCalls(pair)
        }
    }

    func testMessageDeclaredOverTheLimitGetsResourceExhaustedBeforeTheBodyIsSent() throws {
        let pair = try GRPCPair()
        let limit = GRPCServerLimits().maxMessageBytes
        let body = messagePrefix(length: UInt32(limit + 1)) + Array(repeating: 0x61, count: limit + 1)
        let streamID = try pair.startCall(body: body)

        // One flight from the client (far less than the body) is enough for the answer.
        let firstFlight = try pair.client.drainOutput()
        _ = try pair.server.receive(firstFlight)
        try pair.client.receive(try pair.server.http2.drainOutput())
        XCTAssertEqual(CallOutcome(events: pair.client.takeEvents().filter { $0.streamID == streamID }).grpcStatus, "8")

        try pair.pump()
        XCTAssertLessThan(firstFlight.count + pair.bytesSentByClient, limit / 4, "the client stopped sending the rest of the body")
        XCTAssertEqual(pair.takeServerEvents().requests.count, 0)
        try assertConnectionStillServesCalls(pair)
    }

    func testMessageExactlyAtTheLimitIsAcceptedAndOneByteMoreIsNot() throws {
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = 1_024
        let pair = try GRPCPair(limits: limits)

        let atLimit = try pair.dispatchCall(message: Array(repeating: 1, count: 1_024))
        XCTAssertEqual(atLimit.message.count, 1_024)

        let overLimit = try pair.startCall(body: GRPCMessageFraming.frame(Array(repeating: 1, count: 1_025)))
        try assertRejected(overLimit, in: pair, grpcStatus: .resourceExhausted, messageContains: "1025")
        try assertConnectionStillServesCalls(pair)
    }

    func testUnaryMessagesLargerThanTheStreamWindowArriveWhole() throws {
        // The server gives each stream's window back itself; a body beyond
        // one window (1 MiB) arrives only if it does so as the body comes.
        let pair = try GRPCPair()
        let message = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        for _ in 0..<6 {
            let request = try pair.dispatchCall(message: message)
            XCTAssertEqual(Array(request.message), message)
            pair.sendResponse(streamID: request.streamID, message: [1])
        }
        XCTAssertGreaterThan(pair.bytesSentByClient, 18_000_000, "more than the 16 MiB connection window, which must be given back too")
    }

    func testBodiesOfRefusedAndResetCallsGiveTheConnectionWindowBack() throws {
        // Nobody reads these bodies, so nobody gives their stream windows
        // back; the connection's window must come back regardless, or after
        // 16 MiB of them the connection stops carrying anything.
        var limits = GRPCServerLimits()
        limits.maxMessageBytes = 1_024
        let pair = try GRPCPair(limits: limits)
        let body = messagePrefix(length: 1_000_000) + Array(repeating: 1, count: 1_000_000)
        var resetBytes = 0
        for round in 0..<40 {
            let streamID = try pair.startCall(body: body)
            if round.isMultiple(of: 2) {
                // Refused by its prefix, with up to a stream window of its body in flight.
                try pair.pump()
                XCTAssertEqual(pair.outcome(of: streamID).grpcStatus, "8")
            } else {
                let flight = try pair.client.drainOutput()
                resetBytes += flight.count
                _ = try pair.server.receive(flight)
                pair.client.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
                try pair.pump()
            }
            _ = pair.takeServerEvents()
            _ = pair.takeEndings()
            _ = pair.takeClientEvents()
        }
        XCTAssertGreaterThan(pair.bytesSentByClient + resetBytes, 17_000_000, "more than the 16 MiB connection window crossed")
        try assertConnectionStillServesCalls(pair)
    }

    func testCompressedMessageGetsUnimplemented() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(body: messagePrefix(compressed: 1, length: 3) + [1, 2, 3])
        try assertRejected(streamID, in: pair, grpcStatus: .unimplemented)
        try assertConnectionStillServesCalls(pair)
    }

    func testUnknownCompressionFlagGetsInvalidArgument() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(body: messagePrefix(compressed: 2, length: 1) + [1])
        try assertRejected(streamID, in: pair, grpcStatus: .invalidArgument)
        try assertConnectionStillServesCalls(pair)
    }

    func testTwoMessagesInOneUnaryCallGetInvalidArgument() throws {
        let pair = try GRPCPair()
        let streamID = try pair.startCall(body: GRPCMessageFraming.frame([1, 2]) + GRPCMessageFraming.frame([3]))
        try assertRejected(streamID, in: pair, grpcStatus: .invalidArgument)
        try assertConnectionStillServesCalls(pair)
    }

    func testEmptyBodyGetsInvalidArgument() throws {
        let pair = try GRPCPair()
        let emptyData = try pair.startCall(body: [])
        try assertRejected(emptyData, in: pair, grpcStatus: .invalidArgument)
        try assertConnectionStillServesCalls(pair)

        let headersOnly = try pair.startCall(body: nil)
        try assertRejected(headersOnly, in: pair, grpcStatus: .invalidArgument)
        try assertConnectionStillServesCalls(pair)
    }

    func testTruncatedMessageGetsInvalidArgument() throws {
        let pair = try GRPCPair()
        let shortBody = try pair.startCall(body: messagePrefix(length: 10) + [1, 2, 3, 4])
        try assertRejected(shortBody, in: pair, grpcStatus: .invalidArgument, messageContains: "truncated")
        try assertConnectionStillServesCalls(pair)

        let shortPrefix = try pair.startCall(body: [0, 0, 0])
        try assertRejected(shortPrefix, in: pair, grpcStatus: .invalidArgument, messageContains: "truncated")
        try assertConnectionStillServesCalls(pair)
    }

    // MARK: Connection-level events

    func testPingAnsweredByClientIsReported() throws {
        let pair = try GRPCPair()
        try pair.pump()
        try pair.server.http2.sendPing()
        try pair.pump()
        let events = pair.takeServerEvents()
        XCTAssertEqual(events.count, 1)
        guard case .pingAcknowledged = events.first else { return XCTFail("expected pingAcknowledged, got \(events)") }
    }

    func testClientGoAwayIsReported() throws {
        let pair = try GRPCPair()
        try pair.pump()
        pair.client.terminate(errorCode: HTTP2ErrorCode.noError)
        try pair.pump()
        let events = pair.takeServerEvents()
        XCTAssertEqual(events.count, 1)
        guard case .goAway = events.first else { return XCTFail("expected goAway, got \(events)") }
    }

    func testHTTP1RequestMakesReceiveThrow() throws {
        let server = try GRPCServerConnection()
        XCTAssertThrowsError(try server.receive(Array("POST /ldlm.LDLM/Lock HTTP/1.1\r\nHost: x\r\n\r\n".utf8)))
    }

    // MARK: Helpers

    /// Pumps, then checks the call got a trailers-only answer and was never handed to the owner.
    private func assertRejected(
        _ streamID: Int32,
        in pair: GRPCPair,
        httpStatus: String = "200",
        grpcStatus: GRPCStatus.Code? = nil,
        messageContains expectedText: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        try pair.pump(file: file, line: line)
        let serverEvents = pair.takeServerEvents()
        XCTAssertEqual(serverEvents.requests.count, 0, "the owner never sees a rejected call", file: file, line: line)
        XCTAssertEqual(pair.takeEndings(), [], "nor its end", file: file, line: line)
        XCTAssertFalse(pair.server.isAwaitingResponse(streamID), file: file, line: line)

        let outcome = pair.outcome(of: streamID)
        guard !outcome.headerBlocks.isEmpty else {
            XCTFail("no response reached the client; its stream just closed with code \(outcome.closeCode.map(String.init) ?? "none")", file: file, line: line)
            return
        }
        XCTAssertTrue(outcome.isTrailersOnly, "trailers-only answer, got \(outcome.headerBlocks)", file: file, line: line)
        XCTAssertEqual(outcome.httpStatus, httpStatus, file: file, line: line)
        XCTAssertEqual(outcome.headerBlocks.first?.first(named: "content-type"), "application/grpc", file: file, line: line)
        XCTAssertNotNil(outcome.closeCode, "the stream is closed", file: file, line: line)
        if let grpcStatus {
            XCTAssertEqual(outcome.grpcStatus, String(grpcStatus.rawValue), "\(outcome.grpcMessage ?? "")", file: file, line: line)
        }
        if let expectedText {
            XCTAssertTrue(outcome.grpcMessage?.contains(expectedText) == true, "grpc-message: \(outcome.grpcMessage ?? "nil")", file: file, line: line)
        }
        _ = pair.takeClientEvents()
    }

    private func assertConnectionStillServesCalls(_ pair: GRPCPair, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(pair.server.http2.isActive, file: file, line: line)
        let request = try pair.dispatchCall(message: [0xAB, 0xCD], file: file, line: line)
        XCTAssertEqual(Array(request.message), [0xAB, 0xCD], file: file, line: line)
        pair.sendResponse(streamID: request.streamID, message: [0xEF])
        try pair.pump(file: file, line: line)
        let outcome = pair.outcome(of: request.streamID)
        XCTAssertEqual(outcome.body, GRPCMessageFraming.frame([0xEF]), file: file, line: line)
        XCTAssertEqual(outcome.grpcStatus, "0", file: file, line: line)
        XCTAssertEqual(pair.takeEndings(), [EndedCall(streamID: request.streamID, responseDelivered: true)], file: file, line: line)
        _ = pair.takeClientEvents()
    }
}
