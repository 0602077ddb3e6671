/// The 5-byte prefix of every gRPC message: a compression flag and a
/// big-endian length.
public enum GRPCMessageFraming {
    public static let prefixLength = 5

    /// Writes the prefix into the first ``prefixLength`` bytes of `framed`,
    /// whose message follows them. A prefix already in place is left alone,
    /// so an array whose serializer wrote it is not copied here when shared.
    public static func writePrefix(into framed: inout [UInt8]) {
        precondition(framed.count >= prefixLength, "no room reserved for the gRPC prefix")
        let length = UInt32(framed.count - prefixLength)
        if framed[0] == 0, framed[1] == UInt8(truncatingIfNeeded: length >> 24), framed[2] == UInt8(truncatingIfNeeded: length >> 16),
           framed[3] == UInt8(truncatingIfNeeded: length >> 8), framed[4] == UInt8(truncatingIfNeeded: length) {
            return
        }
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
        try GRPCMessageFraming.declaredLength(prefixAt: 0, of: buffer, maxMessageBytes: maxMessageBytes)
    }
}

/// Splits the body of a call whose client streams into its messages, checking
/// each prefix as soon as it arrives, so a message over the size limit is
/// refused before its body is buffered.
struct GRPCMessageDeframer {
    let maxMessageBytes: Int
    private var buffer: [UInt8] = []
    /// Where the next message's prefix begins in `buffer`.
    private var start = 0

    init(maxMessageBytes: Int) {
        self.maxMessageBytes = maxMessageBytes
    }

    /// Bytes received and not yet returned as a message.
    var bufferedByteCount: Int { buffer.count - start }

    mutating func append(_ bytes: [UInt8]) {
        if start == buffer.count {
            // Everything before was taken: keep the chunk rather than copy it.
            buffer = bytes
        } else {
            buffer.removeFirst(start)
            buffer.append(contentsOf: bytes)
        }
        start = 0
    }

    /// The next complete message without its prefix, or nil until it has
    /// arrived; throws as soon as its prefix shows it must be refused.
    mutating func next() throws(GRPCStatus) -> ArraySlice<UInt8>? {
        guard bufferedByteCount >= GRPCMessageFraming.prefixLength else { return nil }
        let length = try GRPCMessageFraming.declaredLength(prefixAt: start, of: buffer, maxMessageBytes: maxMessageBytes)
        let end = start + GRPCMessageFraming.prefixLength + length
        guard end <= buffer.count else { return nil }
        let message = buffer[(start + GRPCMessageFraming.prefixLength)..<end]
        start = end
        return message
    }
}

extension GRPCMessageFraming {
    /// The length the prefix at `index` declares, if the message it announces
    /// may be read: uncompressed and within `maxMessageBytes`.
    static func declaredLength(prefixAt index: Int, of buffer: [UInt8], maxMessageBytes: Int) throws(GRPCStatus) -> Int {
        switch buffer[index] {
        case 0: break
        case 1: throw GRPCStatus(.unimplemented, "compressed messages are not supported")
        default: throw GRPCStatus(.invalidArgument, "invalid message prefix: compression flag \(buffer[index])")
        }
        let length = Int(buffer[index + 1]) << 24 | Int(buffer[index + 2]) << 16 | Int(buffer[index + 3]) << 8 | Int(buffer[index + 4])
        guard length <= maxMessageBytes else {
            throw GRPCStatus(.resourceExhausted, "request message of \(length) bytes exceeds the limit of \(maxMessageBytes) bytes")
        }
        return length
    }
}
