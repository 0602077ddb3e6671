import LDLMProtocol

/// Every message the server or a client decodes from the wire. The first
/// input byte picks one; the rest is its protobuf encoding.
package enum MessageDecodingFuzzTarget {
    package static let messageTypes: [any (LDLMMessage & Equatable).Type] = [
        LockRequest.self, TryLockRequest.self, UnlockRequest.self, RenewRequest.self,
        LockResponse.self, UnlockResponse.self,
        AdminListLocksRequest.self, AdminListSessionsRequest.self,
        AdminForceUnlockRequest.self, AdminEndSessionRequest.self,
        AdminListLocksResponse.self, AdminListSessionsResponse.self,
        AdminForceUnlockResponse.self, AdminEndSessionResponse.self,
    ]

    /// Decodes the input; whatever decodes must encode to bytes that decode
    /// to an equal message and encode the same again.
    package static func run(_ input: UnsafeRawBufferPointer) {
        guard let selector = input.first else { return }
        let messageType = messageTypes[Int(selector) % messageTypes.count]
        checkRoundTrip(messageType, UnsafeRawBufferPointer(rebasing: input.dropFirst()))
    }

    /// The seed input for `message`.
    package static func input(for message: some LDLMMessage & Equatable) -> [UInt8] {
        let index = messageTypes.firstIndex { $0 == type(of: message) }!
        return [UInt8(index)] + message.serializedBytes()
    }

    private static func checkRoundTrip<Message: LDLMMessage & Equatable>(_: Message.Type, _ bytes: UnsafeRawBufferPointer) {
        guard let decoded = try? Message(serializedBytes: bytes) else { return }
        let encoded = decoded.serializedBytes()
        let redecoded: Message
        do {
            redecoded = try Message(serializedBytes: encoded)
        } catch {
            fatalError("\(Message.self) decoded from the wire, but its re-encoding does not decode: \(error)")
        }
        precondition(redecoded == decoded, "\(Message.self) changed in a round trip: \(decoded) became \(redecoded)")
        precondition(redecoded.serializedBytes() == encoded, "\(Message.self) encodes differently after a round trip")
    }
}
