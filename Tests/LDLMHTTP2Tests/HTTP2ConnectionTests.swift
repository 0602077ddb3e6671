import LDLMHTTP2
import XCTest

final class HTTP2ConnectionTests: XCTestCase {
    // MARK: Connection setup

    func testClientOpensWithPrefaceAndSettingsAndServerAnnouncesItsLimits() throws {
        var serverSettings = HTTP2Settings()
        serverSettings.maxConcurrentStreams = 77
        serverSettings.maxHeaderListSize = 12_345
        serverSettings.initialWindowSize = 54_321
        let pair = try HTTP2Pair(serverSettings: serverSettings)

        let clientHello = try pair.client.drainOutput()
        XCTAssertEqual(Array(clientHello.prefix(clientPreface.count)), clientPreface)
        XCTAssertEqual(WireFrame.parse(clientHello).first?.type, WireFrame.settings)

        let serverHello = try pair.server.drainOutput()
        let serverFrames = WireFrame.parse(serverHello)
        let settings = try XCTUnwrap(serverFrames.first)
        XCTAssertEqual(settings.type, WireFrame.settings)
        XCTAssertEqual(settings.flags, 0, "the server's own SETTINGS, not an ACK")
        let announced = Dictionary(uniqueKeysWithValues: settings.settingsEntries)
        XCTAssertEqual(announced[0x3], 77, "MAX_CONCURRENT_STREAMS")
        XCTAssertEqual(announced[0x6], 12_345, "MAX_HEADER_LIST_SIZE")
        XCTAssertEqual(announced[0x4], 54_321, "INITIAL_WINDOW_SIZE")
        let connectionWindowGrowth = serverFrames.first { $0.type == WireFrame.windowUpdate && $0.streamID == 0 }
        XCTAssertEqual(connectionWindowGrowth?.payload, withUnsafeBytes(of: UInt32((1 << 24) - 65_535).bigEndian, Array.init))

        try pair.client.receive(serverHello)
        try pair.server.receive(clientHello)
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents(), [])
        XCTAssertEqual(pair.takeServerEvents(), [])
        XCTAssertTrue(pair.client.isActive)
        XCTAssertTrue(pair.server.isActive)
        XCTAssertEqual(try pair.client.drainOutput(), [], "SETTINGS were acknowledged; nothing is left to say")
        XCTAssertEqual(try pair.server.drainOutput(), [])
    }

    func testClientHonoursTheServersMaxConcurrentStreams() throws {
        var serverSettings = HTTP2Settings()
        serverSettings.maxConcurrentStreams = 2
        let pair = try HTTP2Pair(serverSettings: serverSettings)
        try pair.pump()

        let streamIDs = try (0..<5).map { _ in try pair.client.sendRequest(headers: requestHeaders(), body: nil) }
        var answered: Set<Int32> = []
        for _ in 0..<5 {
            try pair.pump()
            let opened = Set(pair.takeServerEvents().compactMap { event -> Int32? in
                if case .headers(let id, _) = event { return id }
                return nil
            })
            XCTAssertLessThanOrEqual(opened.count, 2, "never more than two streams open at the server")
            for id in opened {
                try pair.server.sendResponse(streamID: id, headers: [HTTP2Header(":status", "200")])
                answered.insert(id)
            }
            if answered.count == 5 { break }
        }
        try pair.pump()
        XCTAssertEqual(answered, Set(streamIDs))
        let clientEvents = pair.takeClientEvents()
        for id in streamIDs {
            XCTAssertEqual(clientEvents.closeCode(of: id), 0, "stream \(id)")
        }
    }

    // MARK: Requests and responses

    func testRequestHeadersAndBodyArriveAtServerInOrder() throws {
        let pair = try HTTP2Pair()
        let body = patternBytes(count: 40_000)
        let headers = requestHeaders(path: "/upload", extra: [HTTP2Header("x-trace", "abc"), HTTP2Header("authorization", "secret")])

        let streamID = try pair.client.sendRequest(headers: headers, body: body)
        try pair.pump()

        let events = pair.takeServerEvents()
        XCTAssertEqual(events.shape(of: streamID), ["headers", "data", "endStream"])
        XCTAssertEqual(events.headerBlocks(of: streamID), [headers])
        XCTAssertEqual(events.body(of: streamID), body)
        let chunks = events.events(on: streamID).filter { if case .data = $0 { return true } else { return false } }
        XCTAssertGreaterThan(chunks.count, 1, "a body larger than one frame arrives in several chunks")
    }

    func testRequestWithoutBodyEndsWithItsHeaders() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents().shape(of: streamID), ["headers", "endStream"])
    }

    func testResponseWithBodyAndTrailersArrivesInOrderAndClosesCleanlyOnBothSides() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: [1, 2, 3])
        try pair.pump()
        _ = pair.takeServerEvents()

        let responseHeaders = [HTTP2Header(":status", "200"), HTTP2Header("content-type", "application/grpc")]
        let body = patternBytes(count: 50_000, seed: 3)
        let trailers = [HTTP2Header("grpc-status", "0"), HTTP2Header("x-checksum", "42")]
        try pair.server.sendResponse(streamID: streamID, headers: responseHeaders, body: body, trailers: trailers)
        try pair.pump()

        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.shape(of: streamID), ["headers", "data", "headers", "endStream", "closed(0)"])
        XCTAssertEqual(clientEvents.headerBlocks(of: streamID), [responseHeaders, trailers])
        XCTAssertEqual(clientEvents.body(of: streamID), body)
        XCTAssertEqual(pair.takeServerEvents(), [.streamClosed(streamID: streamID, errorCode: 0)])
    }

    func testResponseWithBodyAndNoTrailersEndsWithTheBody() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()

        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")], body: [9, 8, 7])
        try pair.pump()

        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.shape(of: streamID), ["headers", "data", "endStream", "closed(0)"])
        XCTAssertEqual(clientEvents.body(of: streamID), [9, 8, 7])
    }

    func testResponseWithTrailersButNoBodyCarriesNoData() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()

        let trailers = [HTTP2Header("grpc-status", "5")]
        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")], body: nil, trailers: trailers)
        try pair.pump()

        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.body(of: streamID), [])
        XCTAssertEqual(clientEvents.headerBlocks(of: streamID).last, trailers)
        XCTAssertEqual(clientEvents.closeCode(of: streamID), 0)
    }

    func testHeadersOnlyResponseEndsTheStream() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: [1])
        try pair.pump()
        _ = pair.takeServerEvents()

        let headers = [HTTP2Header(":status", "200"), HTTP2Header("grpc-status", "12"), HTTP2Header("grpc-message", "nope")]
        try pair.server.sendResponse(streamID: streamID, headers: headers)
        try pair.pump()

        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.events(on: streamID), [
            .headers(streamID: streamID, headers: HTTP2HeaderFields(headers)),
            .endStream(streamID: streamID),
            .streamClosed(streamID: streamID, errorCode: 0),
        ])
        XCTAssertEqual(pair.takeServerEvents(), [.streamClosed(streamID: streamID, errorCode: 0)])
    }

    func testLargeBodiesCrossFlowControlIntactInBothDirections() throws {
        let pair = try HTTP2Pair()
        let requestBody = patternBytes(count: 3 * 1024 * 1024, seed: 1)
        let responseBody = patternBytes(count: 3 * 1024 * 1024 + 17, seed: 2)

        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: requestBody)
        try pair.pump()
        let serverEvents = pair.takeServerEvents()
        XCTAssertEqual(serverEvents.shape(of: streamID), ["headers", "data", "endStream"])
        XCTAssertTrue(serverEvents.body(of: streamID) == requestBody, "request body arrived changed")

        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")], body: responseBody, trailers: [HTTP2Header("done", "1")])
        try pair.pump()
        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.shape(of: streamID), ["headers", "data", "headers", "endStream", "closed(0)"])
        XCTAssertTrue(clientEvents.body(of: streamID) == responseBody, "response body arrived changed")
    }

    func testBodyLargerThanTinyWindowsStillArrivesIntact() throws {
        var small = HTTP2Settings()
        small.initialWindowSize = 1_000
        small.connectionWindowSize = 65_535
        let pair = try HTTP2Pair(clientSettings: small, serverSettings: small)
        let body = patternBytes(count: 200_000, seed: 5)

        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: body)
        try pair.pump()
        XCTAssertTrue(pair.takeServerEvents().body(of: streamID) == body)

        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")], body: body)
        try pair.pump()
        XCTAssertTrue(pair.takeClientEvents().body(of: streamID) == body)
    }

    func testManyConcurrentStreamsInterleaveAndKeepTheirOwnBodies() throws {
        let pair = try HTTP2Pair()
        try pair.pump()
        let streamCount = 40
        var requestBodies: [Int32: [UInt8]] = [:]
        for index in 0..<streamCount {
            let body = patternBytes(count: 20_000 + index * 101, seed: index)
            let id = try pair.client.sendRequest(headers: requestHeaders(path: "/s/\(index)"), body: body)
            requestBodies[id] = body
        }
        try pair.pump()
        let serverEvents = pair.takeServerEvents()

        let dataOrder = serverEvents.compactMap { event -> Int32? in
            if case .data(let id, _) = event { return id }
            return nil
        }
        let switches = zip(dataOrder, dataOrder.dropFirst()).filter { $0 != $1 }.count
        XCTAssertGreaterThan(switches, streamCount, "bodies were interleaved on the wire")

        var responseBodies: [Int32: [UInt8]] = [:]
        for (id, body) in requestBodies.sorted(by: { $0.key > $1.key }) {
            XCTAssertEqual(serverEvents.shape(of: id), ["headers", "data", "endStream"], "stream \(id)")
            XCTAssertEqual(serverEvents.body(of: id), body, "stream \(id)")
            let response = Array(body.reversed()) + [UInt8(truncatingIfNeeded: id)]
            responseBodies[id] = response
            try pair.server.sendResponse(streamID: id, headers: [HTTP2Header(":status", "200")], body: response, trailers: [HTTP2Header("id", "\(id)")])
        }
        try pair.pump()

        let clientEvents = pair.takeClientEvents()
        for (id, response) in responseBodies {
            XCTAssertEqual(clientEvents.body(of: id), response, "stream \(id)")
            XCTAssertEqual(clientEvents.headerBlocks(of: id).last, [HTTP2Header("id", "\(id)")])
            XCTAssertEqual(clientEvents.closeCode(of: id), 0)
        }
    }

    // MARK: Resets

    func testClientResetClosesTheStreamWithItsCodeOnBothSidesAndTheConnectionCarriesOn() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: [1, 2, 3])
        try pair.pump()
        _ = pair.takeServerEvents()

        pair.client.resetStream(streamID, errorCode: 8)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents(), [.streamClosed(streamID: streamID, errorCode: 8)])
        XCTAssertEqual(pair.takeClientEvents().closeCode(of: streamID), 8)

        let next = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents().shape(of: next), ["headers", "endStream"])
        try pair.server.sendResponse(streamID: next, headers: [HTTP2Header(":status", "204")])
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents().closeCode(of: next), 0)
    }

    func testServerResetOfStreamStillUploadingStopsTheClient() throws {
        let pair = try HTTP2Pair()
        let body = patternBytes(count: 4 * 1024 * 1024)
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: body)
        try pair.server.receive(try pair.client.drainOutput())
        XCTAssertEqual(pair.server.takeEvents().headerBlocks(of: streamID).count, 1)

        pair.server.resetStream(streamID, errorCode: 8)
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents().closeCode(of: streamID), 8)
        XCTAssertEqual(pair.takeServerEvents().closeCode(of: streamID), 8)
        XCTAssertLessThan(pair.bytesSentByClient, body.count / 2, "the client stopped uploading")
    }

    /// A reset of a stream one side has closed is reported, since it means the
    /// other side never saw the whole of it, and changes nothing else.
    func testResetOfClosedStreamIsHarmless() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()
        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")])
        try pair.pump()
        _ = pair.takeClientEvents()
        _ = pair.takeServerEvents()

        pair.server.resetStream(streamID, errorCode: 2)
        pair.client.resetStream(streamID, errorCode: 2)
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents(), [.resetAfterClose(streamID: streamID)])
        XCTAssertEqual(pair.takeServerEvents(), [.resetAfterClose(streamID: streamID)])
        XCTAssertTrue(pair.client.isActive)
        XCTAssertTrue(pair.server.isActive)
    }

    func testHeaderListLargerThanTheLimitResetsOnlyThatStream() throws {
        let pair = try HTTP2Pair()
        try pair.pump()
        // Many small fields: over the 64 KiB list limit as RFC 9113 counts it
        // (name + value + 32 each), yet a small compressed block.
        let bulky = (0..<2_000).map { HTTP2Header("x-h\($0)", "v") }
        XCTAssertGreaterThan(bulky.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }, Int(HTTP2Settings().maxHeaderListSize))

        let before = try pair.client.sendRequest(headers: requestHeaders(path: "/before"), body: [1])
        let oversized = try pair.client.sendRequest(headers: requestHeaders(path: "/oversized", extra: bulky), body: [2])
        // Reuses names the oversized block put in the HPACK table, so it only
        // decodes right if the server kept that table in step.
        let afterHeaders = requestHeaders(path: "/after", extra: Array(bulky.suffix(20)))
        let after = try pair.client.sendRequest(headers: afterHeaders, body: [3])
        try pair.pump()

        let serverEvents = pair.takeServerEvents()
        XCTAssertEqual(serverEvents.headerBlocks(of: oversized), [], "the oversized block never reaches the application")
        XCTAssertEqual(serverEvents.filter { $0 == .headerListTooLarge(streamID: oversized) }.count, 1, "reported once, for the log")
        XCTAssertFalse(serverEvents.contains(.headerListTooLarge(streamID: before)))
        XCTAssertEqual(serverEvents.body(of: oversized), [])
        XCTAssertNotEqual(serverEvents.closeCode(of: oversized), 0)
        XCTAssertNotNil(serverEvents.closeCode(of: oversized))
        XCTAssertEqual(pair.takeClientEvents().closeCode(of: oversized).map { $0 != 0 }, true, "the client sees its stream reset")

        XCTAssertEqual(serverEvents.headerBlocks(of: before), [requestHeaders(path: "/before")])
        XCTAssertEqual(serverEvents.headerBlocks(of: after), [afterHeaders])
        for id in [before, after] {
            try pair.server.sendResponse(streamID: id, headers: [HTTP2Header(":status", "200")], body: [UInt8(id)])
        }
        try pair.pump()
        let clientEvents = pair.takeClientEvents()
        XCTAssertEqual(clientEvents.body(of: before), [UInt8(before)])
        XCTAssertEqual(clientEvents.body(of: after), [UInt8(after)])
        XCTAssertEqual(clientEvents.closeCode(of: before), 0)
        XCTAssertEqual(clientEvents.closeCode(of: after), 0)
        XCTAssertTrue(pair.server.isActive)
    }

    func testHeaderListJustUnderTheLimitIsAccepted() throws {
        var settings = HTTP2Settings()
        settings.maxHeaderListSize = 4_096
        let pair = try HTTP2Pair(serverSettings: settings)
        let base = requestHeaders()
        let baseSize = base.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
        let filler = HTTP2Header("x-fill", String(repeating: "f", count: 4_096 - baseSize - 32 - "x-fill".utf8.count))

        let fits = try pair.client.sendRequest(headers: base + [filler], body: nil)
        let tooBig = try pair.client.sendRequest(headers: base + [HTTP2Header(filler.name, filler.value + "f")], body: nil)
        try pair.pump()

        let events = pair.takeServerEvents()
        XCTAssertEqual(events.headerBlocks(of: fits), [base + [filler]])
        XCTAssertEqual(events.headerBlocks(of: tooBig), [])
        XCTAssertNotNil(events.closeCode(of: tooBig))
    }

    // MARK: Connection control

    func testPingIsAcknowledgedToWhicheverSideSentIt() throws {
        let pair = try HTTP2Pair()
        try pair.pump()

        try pair.client.sendPing()
        try pair.pump()
        XCTAssertEqual(pair.takeClientEvents(), [.pingAcknowledged])
        XCTAssertEqual(pair.takeServerEvents(), [])

        try pair.server.sendPing()
        try pair.server.sendPing()
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents(), [.pingAcknowledged, .pingAcknowledged])
        XCTAssertEqual(pair.takeClientEvents(), [])
    }

    func testServerTerminateSendsGoAwayAndEndsTheSession() throws {
        let pair = try HTTP2Pair()
        let streamID = try pair.client.sendRequest(headers: requestHeaders(), body: nil)
        try pair.pump()
        try pair.server.sendResponse(streamID: streamID, headers: [HTTP2Header(":status", "200")])
        try pair.pump()
        _ = pair.takeClientEvents()

        pair.server.terminate(errorCode: 0)
        XCTAssertTrue(pair.server.isActive, "the GOAWAY has not gone out yet")
        let output = try pair.server.drainOutput()
        XCTAssertFalse(pair.server.isActive)
        XCTAssertEqual(WireFrame.parse(output).map(\.type), [WireFrame.goAway])

        try pair.client.receive(output)
        XCTAssertEqual(pair.client.takeEvents(), [.goAway(lastStreamID: streamID, errorCode: 0)])
    }

    func testClientTerminateIsSeenByServerWithItsErrorCode() throws {
        let pair = try HTTP2Pair()
        try pair.pump()
        pair.client.terminate(errorCode: 2)
        try pair.pump()
        XCTAssertEqual(pair.takeServerEvents(), [.goAway(lastStreamID: 0, errorCode: 2)])
        XCTAssertFalse(pair.client.isActive)
    }

    // MARK: Protocol errors

    func testGarbageInsteadOfClientPrefaceMakesReceiveThrow() throws {
        let server = try HTTP2Connection(role: .server)
        XCTAssertThrowsError(try server.receive(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)))
        XCTAssertEqual(server.takeEvents(), [])
    }

    func testSessionIsFinishedAfterGarbageInsteadOfClientPreface() throws {
        let server = try HTTP2Connection(role: .server)
        XCTAssertThrowsError(try server.receive(Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)))

        let frames = WireFrame.parse(try server.drainOutput())
        XCTAssertTrue(!server.isActive || frames.contains { $0.type == WireFrame.goAway },
                      "after a bad preface the session should be inactive or have told the peer with GOAWAY; "
                          + "isActive is \(server.isActive), frames sent: \(frames.map(\.type))")
    }

    func testFirstFrameOtherThanSettingsGetsGoAwayProtocolError() throws {
        let server = try HTTP2Connection(role: .server)
        let ping = WireFrame(type: WireFrame.ping, flags: 0, streamID: 0, payload: Array(repeating: 0, count: 8))

        do {
            try server.receive(clientPreface + ping.encoded)
        } catch {
            // Either way the peer must be told, below.
        }
        let frames = WireFrame.parse(try server.drainOutput())
        let goAway = try XCTUnwrap(frames.first { $0.type == WireFrame.goAway })
        XCTAssertEqual(goAway.goAwayErrorCode, 1, "PROTOCOL_ERROR")
        XCTAssertFalse(server.isActive)
    }

    func testDataOnStreamZeroGetsGoAwayAndEndsTheSession() throws {
        let pair = try HTTP2Pair()
        try pair.pump()
        let bogus = WireFrame(type: WireFrame.data, flags: 0, streamID: 0, payload: [1, 2, 3])

        do {
            try pair.server.receive(bogus.encoded)
        } catch {
            // The GOAWAY below is what matters to the peer.
        }
        let output = try pair.server.drainOutput()
        XCTAssertTrue(WireFrame.parse(output).contains { $0.type == WireFrame.goAway && $0.goAwayErrorCode == 1 })
        XCTAssertFalse(pair.server.isActive)
        try pair.client.receive(output)
        XCTAssertEqual(pair.client.takeEvents(), [.goAway(lastStreamID: 0, errorCode: 1)])
    }
}
