import CLDLMProto
import CProtobufC

// The admin listings: repeated messages with strings of their own, so they
// are built in an `EncodeArena` that lives until the pack is done.

extension AdminListLocksResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__list_locks_response__unpack, free: ldlm__admin__v1__list_locks_response__free_unpacked) {
            AdminListLocksResponse(locks: elements($0.locks, count: $0.n_locks).map(AdminLock.init))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = Ldlm__Admin__V1__ListLocksResponse()
            ldlm__admin__v1__list_locks_response__init(&message)
            message.n_locks = locks.count
            message.locks = arena.array(locks.map { $0.cMessage(in: &arena) })
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__list_locks_response__get_packed_size, pack: ldlm__admin__v1__list_locks_response__pack)
        }
    }
}

extension AdminLock {
    init(_ message: Ldlm__Admin__V1__Lock) {
        self.init(
            name: string(message.name),
            size: message.size,
            holders: elements(message.holders, count: message.n_holders).map(AdminHolder.init),
            waiters: message.waiters
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Ldlm__Admin__V1__Lock> {
        var message = Ldlm__Admin__V1__Lock()
        ldlm__admin__v1__lock__init(&message)
        message.name = arena.string(name)
        message.size = size
        message.n_holders = holders.count
        message.holders = arena.array(holders.map { $0.cMessage(in: &arena) })
        message.waiters = waiters
        return arena.object(message)
    }
}

extension AdminHolder {
    init(_ message: Ldlm__Admin__V1__Holder) {
        self.init(
            keyPrefix: string(message.key_prefix),
            sessionID: message.session_id,
            remoteAddress: string(message.remote_address),
            clientIdentity: string(message.client_identity),
            leaseRemainingMilliseconds: message._lease_remaining_ms_case.rawValue != 0 ? message.lease_remaining_ms : nil,
            fencingToken: message.fencing_token
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Ldlm__Admin__V1__Holder> {
        var message = Ldlm__Admin__V1__Holder()
        ldlm__admin__v1__holder__init(&message)
        message.key_prefix = arena.string(keyPrefix)
        message.session_id = sessionID
        message.remote_address = arena.string(remoteAddress)
        message.client_identity = arena.string(clientIdentity)
        if let leaseRemainingMilliseconds {
            message._lease_remaining_ms_case = LDLM__ADMIN__V1__HOLDER___LEASE_REMAINING_MS_LEASE_REMAINING_MS
            message.lease_remaining_ms = leaseRemainingMilliseconds
        }
        message.fencing_token = fencingToken
        return arena.object(message)
    }
}

extension AdminListSessionsResponse: LDLMMessage {
    public init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        self = try decodeCMessage(bytes, unpack: ldlm__admin__v1__list_sessions_response__unpack, free: ldlm__admin__v1__list_sessions_response__free_unpacked) {
            AdminListSessionsResponse(sessions: elements($0.sessions, count: $0.n_sessions).map(AdminSession.init))
        }
    }

    public func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            var message = Ldlm__Admin__V1__ListSessionsResponse()
            ldlm__admin__v1__list_sessions_response__init(&message)
            message.n_sessions = sessions.count
            message.sessions = arena.array(sessions.map { $0.cMessage(in: &arena) })
            return encodeCMessage(&message, prefixLength: prefixLength, packedSize: ldlm__admin__v1__list_sessions_response__get_packed_size, pack: ldlm__admin__v1__list_sessions_response__pack)
        }
    }
}

extension AdminSession {
    init(_ message: Ldlm__Admin__V1__Session) {
        self.init(
            id: message.id,
            remoteAddress: string(message.remote_address),
            clientIdentity: string(message.client_identity),
            locksHeld: message.locks_held,
            waitingCalls: message.waiting_calls,
            connectedSinceUnixMilliseconds: message.connected_since_unix_ms
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Ldlm__Admin__V1__Session> {
        var message = Ldlm__Admin__V1__Session()
        ldlm__admin__v1__session__init(&message)
        message.id = id
        message.remote_address = arena.string(remoteAddress)
        message.client_identity = arena.string(clientIdentity)
        message.locks_held = locksHeld
        message.waiting_calls = waitingCalls
        message.connected_since_unix_ms = connectedSinceUnixMilliseconds
        return arena.object(message)
    }
}
