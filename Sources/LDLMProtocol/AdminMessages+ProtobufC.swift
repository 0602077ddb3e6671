import CLDLMProto
import CProtobufC

// The admin requests and the answers without lists: flat messages, encoded
// like those of `ldlm.proto` (see Messages+ProtobufC.swift).

extension AdminListLocksRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__list_locks_request__unpack, free: ldlm__admin__v1__list_locks_request__free_unpacked) { _ in
            AdminListLocksRequest()
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__ListLocksRequest()
        ldlm__admin__v1__list_locks_request__init(&message)
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__list_locks_request__get_packed_size, pack: ldlm__admin__v1__list_locks_request__pack)
    }
}

extension AdminListSessionsRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__list_sessions_request__unpack, free: ldlm__admin__v1__list_sessions_request__free_unpacked) { _ in
            AdminListSessionsRequest()
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__ListSessionsRequest()
        ldlm__admin__v1__list_sessions_request__init(&message)
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__list_sessions_request__get_packed_size, pack: ldlm__admin__v1__list_sessions_request__pack)
    }
}

extension AdminForceUnlockRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__force_unlock_request__unpack, free: ldlm__admin__v1__force_unlock_request__free_unpacked) {
            AdminForceUnlockRequest(name: string($0.name), key: string($0.key))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__ForceUnlockRequest()
        ldlm__admin__v1__force_unlock_request__init(&message)
        return withCStrings(name, key) { name, key in
            message.name = name
            message.key = key
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__force_unlock_request__get_packed_size, pack: ldlm__admin__v1__force_unlock_request__pack)
        }
    }
}

extension AdminForceUnlockResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__force_unlock_response__unpack, free: ldlm__admin__v1__force_unlock_response__free_unpacked) {
            AdminForceUnlockResponse(released: $0.released)
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__ForceUnlockResponse()
        ldlm__admin__v1__force_unlock_response__init(&message)
        message.released = released
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__force_unlock_response__get_packed_size, pack: ldlm__admin__v1__force_unlock_response__pack)
    }
}

extension AdminEndSessionRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__end_session_request__unpack, free: ldlm__admin__v1__end_session_request__free_unpacked) {
            AdminEndSessionRequest(sessionID: $0.session_id)
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__EndSessionRequest()
        ldlm__admin__v1__end_session_request__init(&message)
        message.session_id = sessionID
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__end_session_request__get_packed_size, pack: ldlm__admin__v1__end_session_request__pack)
    }
}

extension AdminEndSessionResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__end_session_response__unpack, free: ldlm__admin__v1__end_session_response__free_unpacked) {
            AdminEndSessionResponse(releasedLocks: $0.released_locks)
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__Admin__V1__EndSessionResponse()
        ldlm__admin__v1__end_session_response__init(&message)
        message.released_locks = releasedLocks
        return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__end_session_response__get_packed_size, pack: ldlm__admin__v1__end_session_response__pack)
    }
}
