/// The 5-byte prefix of every gRPC message: a compression flag and a
/// big-endian length.
public enum GRPCMessageFraming {
    public static let prefixLength = 5

    /// Writes the prefix into the first ``prefixLength`` bytes of `framed`,
    /// whose message follows them.
    public static func writePrefix(into framed: inout [UInt8]) {
        precondition(framed.count >= prefixLength, "no room reserved for the gRPC prefix")
        let length = UInt32(framed.count - prefixLength)
        framed[0] = 0
        framed[1] = UInt8(truncatingIfNeeded: length >> 24)
        framed[2] = UInt8(truncatingIfNeeded: length >> 16)
        framed[3] = UInt8(truncatingIfNeeded: length >> 8)
        framed[4] = UInt8(truncatingIfNeeded: length)
    }

    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var framed = [UInt8]()
        framed.reserveCapacity(prefixLength + message.count)
        framed.append(contentsOf: repeatElement(0, count: prefixLength))
        framed.append(contentsOf: message)
        writePrefix(into: &framed)
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
        if buffer.isEmpty {
            // Most messages arrive in one chunk: keep it rather than copy it.
            buffer = bytes
        } else {
            buffer.append(contentsOf: bytes)
        }
        guard buffer.count >= GRPCMessageFraming.prefixLength else { return }
        let length = try declaredLength()
        if buffer.count > GRPCMessageFraming.prefixLength + length {
            throw GRPCStatus(.invalidArgument, "unary request carries more than one message")
        }
    }

    /// The message once the peer has ended the stream.
    func message() throws(GRPCStatus) -> ArraySlice<UInt8> {
        guard buffer.count >= GRPCMessageFraming.prefixLength else {
            throw GRPCStatus(.invalidArgument, buffer.isEmpty ? "request has no message" : "request message is truncated")
        }
        let length = try declaredLength()
        guard buffer.count == GRPCMessageFraming.prefixLength + length else {
            throw GRPCStatus(.invalidArgument, "request message is truncated: \(buffer.count - GRPCMessageFraming.prefixLength) of \(length) bytes")
        }
        return buffer[GRPCMessageFraming.prefixLength...]
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
