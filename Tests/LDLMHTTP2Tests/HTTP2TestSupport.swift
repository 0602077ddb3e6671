import LDLMHTTP2
import LDLMTestSupport
import XCTest

/// A client and a server session joined by an in-memory wire: whatever one
/// side drains is fed to the other, so both see exactly what a socket would carry.
final class HTTP2Pair {
    let client: HTTP2Connection
    let server: HTTP2Connection
    private(set) var clientEvents: [HTTP2Event] = []
    private(set) var serverEvents: [HTTP2Event] = []
    private(set) var bytesSentByClient = 0

    init(clientSettings: HTTP2Settings = HTTP2Settings(), serverSettings: HTTP2Settings = HTTP2Settings()) throws {
        client = try HTTP2Connection(role: .client, settings: clientSettings)
        server = try HTTP2Connection(role: .server, settings: serverSettings)
    }

    /// Carries bytes both ways until neither side has anything left to send.
    func pump(file: StaticString = #filePath, line: UInt = #line) throws {
        for _ in 0..<10_000 {
            let fromClient = try client.drainOutput()
            bytesSentByClient += fromClient.count
            if !fromClient.isEmpty { try server.receive(fromClient) }
            let fromServer = try server.drainOutput()
            if !fromServer.isEmpty { try client.receive(fromServer) }
            clientEvents += client.takeEvents()
            serverEvents += server.takeEvents()
            if fromClient.isEmpty, fromServer.isEmpty { return }
        }
        XCTFail("the connections never went quiet", file: file, line: line)
    }

    func takeClientEvents() -> [HTTP2Event] {
        defer { clientEvents.removeAll() }
        return clientEvents
    }

    func takeServerEvents() -> [HTTP2Event] {
        defer { serverEvents.removeAll() }
        return serverEvents
    }
}

func requestHeaders(path: String = "/echo", extra: [HTTP2Header] = []) -> [HTTP2Header] {
    [
        HTTP2Header(":method", "POST"),
        HTTP2Header(":scheme", "http"),
        HTTP2Header(":path", path),
        HTTP2Header(":authority", "localhost"),
    ] + extra
}

/// Bytes that are easy to tell apart per stream and per offset.
func patternBytes(count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 31) &+ seed &* 7 &+ $0 / 251) }
}

extension Array where Element == HTTP2Event {
    func events(on streamID: Int32) -> [HTTP2Event] {
        filter { event in
            switch event {
            case .headers(let id, _), .data(let id, _), .endStream(let id), .streamClosed(let id, _), .resetAfterClose(let id),
                .headerListTooLarge(let id), .queuedDataSent(let id):
                return id == streamID
            case .pingAcknowledged, .goAway:
                return false
            }
        }
    }

    func body(of streamID: Int32) -> [UInt8] {
        events(on: streamID).flatMap { event -> [UInt8] in
            if case .data(_, let bytes) = event { return bytes }
            return []
        }
    }

    func headerBlocks(of streamID: Int32) -> [[HTTP2Header]] {
        events(on: streamID).compactMap { event in
            if case .headers(_, let headers) = event { return headers.fields }
            return nil
        }
    }

    func closeCode(of streamID: Int32) -> UInt32? {
        for case .streamClosed(let id, let code) in self where id == streamID {
            return code
        }
        return nil
    }

    /// The stream's events with data chunks merged, so sequences read the same
    /// however flow control split the body.
    func shape(of streamID: Int32) -> [String] {
        var shape: [String] = []
        for event in events(on: streamID) {
            switch event {
            case .headers: shape.append("headers")
            case .data: if shape.last != "data" { shape.append("data") }
            case .endStream: shape.append("endStream")
            case .streamClosed(_, let code): shape.append("closed(\(code))")
            case .resetAfterClose: shape.append("resetAfterClose")
            case .headerListTooLarge: shape.append("headerListTooLarge")
            case .queuedDataSent: break
            case .pingAcknowledged, .goAway: break
            }
        }
        return shape
    }
}

/// One HTTP/2 frame as it travels on the wire.
struct WireFrame: Equatable {
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let ping: UInt8 = 0x6
    static let goAway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8

    var encoded: [UInt8] {
        let length = UInt32(payload.count)
        var bytes = Array(withUnsafeBytes(of: length.bigEndian, Array.init).dropFirst())
        bytes += [type, flags]
        bytes += withUnsafeBytes(of: streamID.bigEndian, Array.init)
        return bytes + payload
    }

    /// Splits `bytes` into frames; a leading client preface is skipped.
    static func parse(_ bytes: [UInt8]) -> [WireFrame] {
        var bytes = bytes[...]
        if bytes.starts(with: clientPreface) { bytes = bytes.dropFirst(clientPreface.count) }
        var frames: [WireFrame] = []
        while bytes.count >= 9 {
            let header = Array(bytes.prefix(9))
            let length = Int(header[0]) << 16 | Int(header[1]) << 8 | Int(header[2])
            let streamID = (UInt32(header[5]) << 24 | UInt32(header[6]) << 16 | UInt32(header[7]) << 8 | UInt32(header[8])) & 0x7FFF_FFFF
            let payload = Array(bytes.dropFirst(9).prefix(length))
            frames.append(WireFrame(type: header[3], flags: header[4], streamID: streamID, payload: payload))
            bytes = bytes.dropFirst(9 + length)
        }
        return frames
    }

    /// SETTINGS entries as (identifier, value).
    var settingsEntries: [(UInt16, UInt32)] {
        stride(from: 0, to: payload.count - 5, by: 6).map { offset -> (UInt16, UInt32) in
            let identifier = UInt16(payload[offset]) << 8 | UInt16(payload[offset + 1])
            return (identifier, bigEndianUInt32(at: offset + 2))
        }
    }

    var goAwayErrorCode: UInt32 {
        bigEndianUInt32(at: 4)
    }

    private func bigEndianUInt32(at offset: Int) -> UInt32 {
        payload[offset..<offset + 4].reduce(UInt32(0)) { value, byte in value << 8 | UInt32(byte) }
    }
}

let clientPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
