import CEtcdProto
import LDLMProtocol

// The messages sent and received whole: each packs the C struct it builds and
// unpacks into one.

extension EtcdRangeRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__range_request__unpack, free: etcdserverpb__range_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__range_request__get_packed_size, pack: etcdserverpb__range_request__pack)
        }
    }
}

extension EtcdRangeResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__range_response__unpack, free: etcdserverpb__range_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__range_response__get_packed_size, pack: etcdserverpb__range_response__pack)
        }
    }
}

extension EtcdPutRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__put_request__unpack, free: etcdserverpb__put_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__put_request__get_packed_size, pack: etcdserverpb__put_request__pack)
        }
    }
}

extension EtcdPutResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__put_response__unpack, free: etcdserverpb__put_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__put_response__get_packed_size, pack: etcdserverpb__put_response__pack)
        }
    }
}

extension EtcdDeleteRangeRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__delete_range_request__unpack, free: etcdserverpb__delete_range_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__delete_range_request__get_packed_size, pack: etcdserverpb__delete_range_request__pack)
        }
    }
}

extension EtcdDeleteRangeResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__delete_range_response__unpack, free: etcdserverpb__delete_range_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__delete_range_response__get_packed_size, pack: etcdserverpb__delete_range_response__pack)
        }
    }
}

extension EtcdTxnRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__txn_request__unpack, free: etcdserverpb__txn_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__txn_request__get_packed_size, pack: etcdserverpb__txn_request__pack)
        }
    }
}

extension EtcdTxnResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__txn_response__unpack, free: etcdserverpb__txn_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__txn_response__get_packed_size, pack: etcdserverpb__txn_response__pack)
        }
    }
}

extension EtcdLeaseGrantRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_grant_request__unpack, free: etcdserverpb__lease_grant_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_grant_request__get_packed_size, pack: etcdserverpb__lease_grant_request__pack)
        }
    }
}

extension EtcdLeaseGrantResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_grant_response__unpack, free: etcdserverpb__lease_grant_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_grant_response__get_packed_size, pack: etcdserverpb__lease_grant_response__pack)
        }
    }
}

extension EtcdLeaseRevokeRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_revoke_request__unpack, free: etcdserverpb__lease_revoke_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_revoke_request__get_packed_size, pack: etcdserverpb__lease_revoke_request__pack)
        }
    }
}

extension EtcdLeaseRevokeResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_revoke_response__unpack, free: etcdserverpb__lease_revoke_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_revoke_response__get_packed_size, pack: etcdserverpb__lease_revoke_response__pack)
        }
    }
}

extension EtcdLeaseKeepAliveRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_keep_alive_request__unpack, free: etcdserverpb__lease_keep_alive_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_keep_alive_request__get_packed_size, pack: etcdserverpb__lease_keep_alive_request__pack)
        }
    }
}

extension EtcdLeaseKeepAliveResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_keep_alive_response__unpack, free: etcdserverpb__lease_keep_alive_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_keep_alive_response__get_packed_size, pack: etcdserverpb__lease_keep_alive_response__pack)
        }
    }
}

extension EtcdLeaseTimeToLiveRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_time_to_live_request__unpack, free: etcdserverpb__lease_time_to_live_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_time_to_live_request__get_packed_size, pack: etcdserverpb__lease_time_to_live_request__pack)
        }
    }
}

extension EtcdLeaseTimeToLiveResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__lease_time_to_live_response__unpack, free: etcdserverpb__lease_time_to_live_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__lease_time_to_live_response__get_packed_size, pack: etcdserverpb__lease_time_to_live_response__pack)
        }
    }
}

extension EtcdAuthenticateRequest: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__authenticate_request__unpack, free: etcdserverpb__authenticate_request__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__authenticate_request__get_packed_size, pack: etcdserverpb__authenticate_request__pack)
        }
    }
}

extension EtcdAuthenticateResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: etcdserverpb__authenticate_response__unpack, free: etcdserverpb__authenticate_response__free_unpacked, convert: Self.init)
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = cMessage(in: &arena).pointee
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__authenticate_response__get_packed_size, pack: etcdserverpb__authenticate_response__pack)
        }
    }
}
