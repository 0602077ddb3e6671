import CLDLMProto
import CProtobufC

/// A message that can be read from and written to protobuf wire bytes.
public protocol LDLMMessage: Sendable {
    init(serializedBytes: UnsafeRawBufferPointer) throws(MessageDecodingError)
    /// The wire bytes after `prefixLength` zero bytes, which a framing layer
    /// fills in (gRPC's length prefix) instead of copying the message.
    func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8]
}

extension LDLMMessage {
    public func serializedBytes() -> [UInt8] {
        serializedBytes(reservingPrefix: 0)
    }

    public init(serializedBytes bytes: [UInt8]) throws(MessageDecodingError) {
        try self.init(serializedBytes: bytes[...])
    }

    /// Inlinable so each caller gets a copy specialized to its message type:
    /// the generic one looks up `Optional<Self>` metadata on every request.
    @inlinable
    public init(serializedBytes bytes: ArraySlice<UInt8>) throws(MessageDecodingError) {
        var decoded: Self?
        var failure: MessageDecodingError?
        bytes.withUnsafeBytes { buffer in
            do throws(MessageDecodingError) {
                decoded = try Self(serializedBytes: buffer)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        self = decoded!
    }
}

/// Unpacks `bytes` with a generated `*__unpack` function, validates its
/// strings, converts it with `convert` and frees the C message.
package func decodeCMessage<CMessage, Message>(
    _ bytes: UnsafeRawBufferPointer,
    unpack: (UnsafeMutablePointer<ProtobufCAllocator>?, Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<CMessage>?,
    free: (UnsafeMutablePointer<CMessage>?, UnsafeMutablePointer<ProtobufCAllocator>?) -> Void,
    convert: (CMessage) -> Message
) throws(MessageDecodingError) -> Message {
    let outcome = DecodeArena.withAllocator { allocator -> Result<Message, MessageDecodingError> in
        // protobuf-c wants a non-NULL pointer even for the empty message.
        var emptyByte: UInt8 = 0
        let message = withUnsafePointer(to: &emptyByte) { empty in
            unpack(allocator, bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? empty)
        }
        guard let message else {
            return .failure(MessageDecodingError("message is not a valid protobuf encoding"))
        }
        defer { free(message, allocator) }
        let descriptor = UnsafeRawPointer(message).assumingMemoryBound(to: ProtobufCMessage.self).pointee.descriptor!
        do throws(MessageDecodingError) {
            try WireStringValidator.validate(bytes, descriptor: descriptor)
        } catch {
            return .failure(error)
        }
        return .success(convert(message.pointee))
    }
    return try outcome.get()
}

/// Serializes a filled-in C message with its generated size and pack
/// functions, after `prefixLength` zero bytes.
package func encodeCMessage<CMessage>(
    _ message: inout CMessage,
    prefixLength: Int,
    packedSize: (UnsafePointer<CMessage>?) -> Int,
    pack: (UnsafePointer<CMessage>?, UnsafeMutablePointer<UInt8>?) -> Int
) -> [UInt8] {
    let size = packedSize(&message)
    // Zero-filled rather than `init(unsafeUninitializedCapacity:)`, whose
    // allocation is not specialized and looks up the array's metadata on
    // every answer; the prefix must be zero anyway.
    var bytes = [UInt8](repeating: 0, count: prefixLength + size)
    if size > 0 {
        let packed = bytes.withUnsafeMutableBufferPointer { pack(&message, $0.baseAddress! + prefixLength) }
        assert(packed == size, "protobuf-c packed a different size than it measured")
    }
    return bytes
}

package func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
    pointer.map { String(cString: $0) } ?? ""
}

/// Runs `body` with C strings for `first` and `second`, valid only during the call.
func withCStrings<Result>(
    _ first: String,
    _ second: String,
    _ body: (UnsafeMutablePointer<CChar>, UnsafeMutablePointer<CChar>) -> Result
) -> Result {
    first.withCString { firstPointer in
        second.withCString { secondPointer in
            body(UnsafeMutablePointer(mutating: firstPointer), UnsafeMutablePointer(mutating: secondPointer))
        }
    }
}

/// Runs `body` with a C `Error` message for `error` (NULL when absent).
func withCError<Result>(_ error: LDLMError?, _ body: (UnsafeMutablePointer<Ldlm__Error>?) -> Result) -> Result {
    guard let error else { return body(nil) }
    var cError = Ldlm__Error()
    ldlm__error__init(&cError)
    cError.code = Ldlm__ErrorCode(rawValue: UInt32(bitPattern: error.code.rawValue))
    return error.message.withCString { message in
        cError.message = UnsafeMutablePointer(mutating: message)
        return withUnsafeMutablePointer(to: &cError) { body($0) }
    }
}

func ldlmError(_ pointer: UnsafeMutablePointer<Ldlm__Error>?) -> LDLMError? {
    guard let error = pointer?.pointee else { return nil }
    let code = ErrorCode(rawValue: Int32(bitPattern: error.code.rawValue)) ?? .unknown
    return LDLMError(code: code, message: string(error.message))
}
