import CLDLMProto
import CProtobufC

// Each message's mapping to its generated protobuf-c struct. A proto3 `optional`
// scalar shows up in C as a one-field oneof: its `_x_case` is non-zero when set.

extension LockRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__lock_request__unpack, free: ldlm__lock_request__free_unpacked) {
            LockRequest(
                name: string($0.name),
                waitTimeoutSeconds: $0._wait_timeout_seconds_case.rawValue != 0 ? $0.wait_timeout_seconds : nil,
                lockTimeoutSeconds: $0._lock_timeout_seconds_case.rawValue != 0 ? $0.lock_timeout_seconds : nil,
                size: $0._size_case.rawValue != 0 ? $0.size : nil
            )
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__LockRequest()
        ldlm__lock_request__init(&message)
        if let waitTimeoutSeconds {
            message._wait_timeout_seconds_case = LDLM__LOCK_REQUEST___WAIT_TIMEOUT_SECONDS_WAIT_TIMEOUT_SECONDS
            message.wait_timeout_seconds = waitTimeoutSeconds
        }
        if let lockTimeoutSeconds {
            message._lock_timeout_seconds_case = LDLM__LOCK_REQUEST___LOCK_TIMEOUT_SECONDS_LOCK_TIMEOUT_SECONDS
            message.lock_timeout_seconds = lockTimeoutSeconds
        }
        if let size {
            message._size_case = LDLM__LOCK_REQUEST___SIZE_SIZE
            message.size = size
        }
        return name.withCString { name in
            message.name = UnsafeMutablePointer(mutating: name)
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__lock_request__get_packed_size, pack: ldlm__lock_request__pack)
        }
    }
}

extension TryLockRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__try_lock_request__unpack, free: ldlm__try_lock_request__free_unpacked) {
            TryLockRequest(
                name: string($0.name),
                lockTimeoutSeconds: $0._lock_timeout_seconds_case.rawValue != 0 ? $0.lock_timeout_seconds : nil,
                size: $0._size_case.rawValue != 0 ? $0.size : nil
            )
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__TryLockRequest()
        ldlm__try_lock_request__init(&message)
        if let lockTimeoutSeconds {
            message._lock_timeout_seconds_case = LDLM__TRY_LOCK_REQUEST___LOCK_TIMEOUT_SECONDS_LOCK_TIMEOUT_SECONDS
            message.lock_timeout_seconds = lockTimeoutSeconds
        }
        if let size {
            message._size_case = LDLM__TRY_LOCK_REQUEST___SIZE_SIZE
            message.size = size
        }
        return name.withCString { name in
            message.name = UnsafeMutablePointer(mutating: name)
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__try_lock_request__get_packed_size, pack: ldlm__try_lock_request__pack)
        }
    }
}

extension LockResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__lock_response__unpack, free: ldlm__lock_response__free_unpacked) {
            LockResponse(
                locked: $0.locked != 0,
                name: string($0.name),
                key: string($0.key),
                error: ldlmError($0.error),
                fencingToken: $0.fencing_token
            )
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__LockResponse()
        ldlm__lock_response__init(&message)
        message.locked = locked ? 1 : 0
        message.fencing_token = fencingToken
        return withCStrings(name, key) { name, key in
            message.name = name
            message.key = key
            return withCError(error) { error in
                message.error = error
                return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__lock_response__get_packed_size, pack: ldlm__lock_response__pack)
            }
        }
    }
}

extension UnlockRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__unlock_request__unpack, free: ldlm__unlock_request__free_unpacked) {
            UnlockRequest(name: string($0.name), key: string($0.key))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__UnlockRequest()
        ldlm__unlock_request__init(&message)
        return withCStrings(name, key) { name, key in
            message.name = name
            message.key = key
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__unlock_request__get_packed_size, pack: ldlm__unlock_request__pack)
        }
    }
}

extension UnlockResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__unlock_response__unpack, free: ldlm__unlock_response__free_unpacked) {
            UnlockResponse(unlocked: $0.unlocked != 0, name: string($0.name), error: ldlmError($0.error))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__UnlockResponse()
        ldlm__unlock_response__init(&message)
        message.unlocked = unlocked ? 1 : 0
        return name.withCString { name in
            message.name = UnsafeMutablePointer(mutating: name)
            return withCError(error) { error in
                message.error = error
                return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__unlock_response__get_packed_size, pack: ldlm__unlock_response__pack)
            }
        }
    }
}

extension RenewRequest: LDLMMessage {
    /// Decodes with the `RenewRequest` schema; `RefreshLockRequest` is identical on the wire.
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__renew_request__unpack, free: ldlm__renew_request__free_unpacked) {
            RenewRequest(name: string($0.name), key: string($0.key), lockTimeoutSeconds: $0.lock_timeout_seconds)
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        var message = Ldlm__RenewRequest()
        ldlm__renew_request__init(&message)
        message.lock_timeout_seconds = lockTimeoutSeconds
        return withCStrings(name, key) { name, key in
            message.name = name
            message.key = key
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__renew_request__get_packed_size, pack: ldlm__renew_request__pack)
        }
    }
}
