/// The 5-byte prefix of every gRPC message: a compression flag and a
/// big-endian length.
public enum GRPCMessageFraming {
    public static let prefixLength = 5

    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var framed = [UInt8]()
        framed.reserveCapacity(prefixLength + message.count)
        framed.append(0)
        let length = UInt32(message.count)
        framed.append(UInt8(truncatingIfNeeded: length >> 24))
        framed.append(UInt8(truncatingIfNeeded: length >> 16))
        framed.append(UInt8(truncatingIfNeeded: length >> 8))
        framed.append(UInt8(truncatingIfNeeded: length))
        framed.append(contentsOf: message)
        return framed
    }
}

/// Collects a unary call's body and checks it is exactly one uncompressed
/// message within the size limit, failing as soon as the prefix shows a problem
/// so an oversized body is never buffered.
struct UnaryMessageAccumulator {
    let maxMessageBytes: Int
    private(set) var buffer: [UInt8] = []

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    mutating func append(_ bytes: [UInt8]) throws(GRPCStatus) {
        buffer.append(contentsOf: bytes)
        guard buffer.count >= GRPCMessageFraming.prefixLength else { return }
        let length = try declaredLength()
        if buffer.count > GRPCMessageFraming.prefixLength + length {
            throw GRPCStatus(.invalidArgument, "unary request carries more than one message")
        }
    }

    /// The message once the peer has ended the stream.
    func message() throws(GRPCStatus) -> [UInt8] {
        guard buffer.count >= GRPCMessageFraming.prefixLength else {
            throw GRPCStatus(.invalidArgument, buffer.isEmpty ? "request has no message" : "request message is truncated")
        }
        let length = try declaredLength()
        guard buffer.count == GRPCMessageFraming.prefixLength + length else {
            throw GRPCStatus(.invalidArgument, "request message is truncated: \(buffer.count - GRPCMessageFraming.prefixLength) of \(length) bytes")
        }
        return Array(buffer[GRPCMessageFraming.prefixLength...])
    }

    private func declaredLength() throws(GRPCStatus) -> Int {
        switch buffer[0] {
        case 0: break
        case 1: throw GRPCStatus(.unimplemented, "compressed messages are not supported")
        default: throw GRPCStatus(.invalidArgument, "invalid message prefix: compression flag \(buffer[0])")
        }
        let length = Int(buffer[1]) << 24 | Int(buffer[2]) << 16 | Int(buffer[3]) << 8 | Int(buffer[4])
        guard length <= maxMessageBytes else {
            throw GRPCStatus(.resourceExhausted, "request message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes")
        }
        return length
    }
}
