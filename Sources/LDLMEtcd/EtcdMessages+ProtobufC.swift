import CEtcdProto
import CProtobufC
import LDLMProtocol

// Conversions between the Swift messages and protobuf-c's structs. Each type
// builds its C struct in an `EncodeArena` (keys, values and nested messages
// live there until the pack is done) and reads one back from an unpacked
// struct; the top-level messages conform to `LDLMMessage`.

func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
    guard data.len > 0, let pointer = data.data else { return [] }
    return Array(UnsafeBufferPointer(start: pointer, count: data.len))
}

extension EtcdResponseHeader {
    init(_ pointer: UnsafeMutablePointer<Etcdserverpb__ResponseHeader>?) {
        guard let message = pointer?.pointee else {
            self.init()
            return
        }
        self.init(clusterID: message.cluster_id, memberID: message.member_id, revision: message.revision, raftTerm: message.raft_term)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__ResponseHeader> {
        var message = Etcdserverpb__ResponseHeader()
        etcdserverpb__response_header__init(&message)
        message.cluster_id = clusterID
        message.member_id = memberID
        message.revision = revision
        message.raft_term = raftTerm
        return arena.object(message)
    }
}

extension EtcdKeyValue {
    init(_ message: Mvccpb__KeyValue) {
        self.init(
            key: bytes(message.key),
            createRevision: message.create_revision,
            modRevision: message.mod_revision,
            version: message.version,
            value: bytes(message.value),
            lease: message.lease
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Mvccpb__KeyValue> {
        var message = Mvccpb__KeyValue()
        mvccpb__key_value__init(&message)
        message.key = arena.bytes(key)
        message.create_revision = createRevision
        message.mod_revision = modRevision
        message.version = version
        message.value = arena.bytes(value)
        message.lease = lease
        return arena.object(message)
    }
}

extension EtcdRangeRequest {
    init(_ message: Etcdserverpb__RangeRequest) {
        self.init(
            key: bytes(message.key),
            rangeEnd: bytes(message.range_end),
            limit: message.limit,
            revision: message.revision,
            serializable: message.serializable != 0,
            keysOnly: message.keys_only != 0,
            countOnly: message.count_only != 0
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__RangeRequest> {
        var message = Etcdserverpb__RangeRequest()
        etcdserverpb__range_request__init(&message)
        message.key = arena.bytes(key)
        message.range_end = arena.bytes(rangeEnd)
        message.limit = limit
        message.revision = revision
        message.serializable = serializable ? 1 : 0
        message.keys_only = keysOnly ? 1 : 0
        message.count_only = countOnly ? 1 : 0
        return arena.object(message)
    }
}

extension EtcdRangeResponse {
    init(_ message: Etcdserverpb__RangeResponse) {
        self.init(
            header: EtcdResponseHeader(message.header),
            kvs: elements(message.kvs, count: message.n_kvs).map(EtcdKeyValue.init),
            more: message.more != 0,
            count: message.count
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__RangeResponse> {
        var message = Etcdserverpb__RangeResponse()
        etcdserverpb__range_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.n_kvs = kvs.count
        message.kvs = arena.array(kvs.map { $0.cMessage(in: &arena) })
        message.more = more ? 1 : 0
        message.count = count
        return arena.object(message)
    }
}

extension EtcdPutRequest {
    init(_ message: Etcdserverpb__PutRequest) {
        self.init(key: bytes(message.key), value: bytes(message.value), lease: message.lease, prevKV: message.prev_kv != 0)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__PutRequest> {
        var message = Etcdserverpb__PutRequest()
        etcdserverpb__put_request__init(&message)
        message.key = arena.bytes(key)
        message.value = arena.bytes(value)
        message.lease = lease
        message.prev_kv = prevKV ? 1 : 0
        return arena.object(message)
    }
}

extension EtcdPutResponse {
    init(_ message: Etcdserverpb__PutResponse) {
        self.init(header: EtcdResponseHeader(message.header), prevKV: message.prev_kv.map { EtcdKeyValue($0.pointee) })
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__PutResponse> {
        var message = Etcdserverpb__PutResponse()
        etcdserverpb__put_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.prev_kv = prevKV?.cMessage(in: &arena)
        return arena.object(message)
    }
}

extension EtcdDeleteRangeRequest {
    init(_ message: Etcdserverpb__DeleteRangeRequest) {
        self.init(key: bytes(message.key), rangeEnd: bytes(message.range_end), prevKV: message.prev_kv != 0)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__DeleteRangeRequest> {
        var message = Etcdserverpb__DeleteRangeRequest()
        etcdserverpb__delete_range_request__init(&message)
        message.key = arena.bytes(key)
        message.range_end = arena.bytes(rangeEnd)
        message.prev_kv = prevKV ? 1 : 0
        return arena.object(message)
    }
}

extension EtcdDeleteRangeResponse {
    init(_ message: Etcdserverpb__DeleteRangeResponse) {
        self.init(
            header: EtcdResponseHeader(message.header),
            deleted: message.deleted,
            prevKVs: elements(message.prev_kvs, count: message.n_prev_kvs).map(EtcdKeyValue.init)
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__DeleteRangeResponse> {
        var message = Etcdserverpb__DeleteRangeResponse()
        etcdserverpb__delete_range_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.deleted = deleted
        message.n_prev_kvs = prevKVs.count
        message.prev_kvs = arena.array(prevKVs.map { $0.cMessage(in: &arena) })
        return arena.object(message)
    }
}

extension EtcdCompare {
    init(_ message: Etcdserverpb__Compare) {
        // Only our own requests carry compares: an unknown result cannot come from etcd.
        let result = Result(rawValue: message.result.rawValue) ?? .equal
        let target: Target
        // The oneof says which value was sent; without one, the target enum
        // names the field and the value is its default.
        switch (message.target_union_case, message.target) {
        case (ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION, _): target = .createRevision(message.create_revision)
        case (ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION, _): target = .modRevision(message.mod_revision)
        case (ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE, _): target = .value(bytes(message.value))
        case (ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE, _): target = .lease(message.lease)
        case (ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION, _): target = .version(message.version)
        case (_, ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE): target = .createRevision(0)
        case (_, ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD): target = .modRevision(0)
        case (_, ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE): target = .value([])
        case (_, ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE): target = .lease(0)
        default: target = .version(0)
        }
        self.init(key: bytes(message.key), result, target, rangeEnd: bytes(message.range_end))
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__Compare> {
        var message = Etcdserverpb__Compare()
        etcdserverpb__compare__init(&message)
        message.result = Etcdserverpb__Compare__CompareResult(rawValue: result.rawValue)
        message.key = arena.bytes(key)
        message.range_end = arena.bytes(rangeEnd)
        // The value always goes out, 0 included: etcd reads a missing oneof as a compare with nothing.
        switch target {
        case .version(let version):
            message.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION
            message.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION
            message.version = version
        case .createRevision(let revision):
            message.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE
            message.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION
            message.create_revision = revision
        case .modRevision(let revision):
            message.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD
            message.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION
            message.mod_revision = revision
        case .value(let value):
            message.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE
            message.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE
            message.value = arena.bytes(value)
        case .lease(let lease):
            message.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE
            message.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE
            message.lease = lease
        }
        return arena.object(message)
    }
}

extension EtcdRequestOp {
    /// Nil for an op without a request, which etcd itself refuses.
    init?(_ message: Etcdserverpb__RequestOp) {
        switch message.request_case {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE: self = .range(EtcdRangeRequest(message.request_range.pointee))
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT: self = .put(EtcdPutRequest(message.request_put.pointee))
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE: self = .deleteRange(EtcdDeleteRangeRequest(message.request_delete_range.pointee))
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: self = .txn(EtcdTxnRequest(message.request_txn.pointee))
        default: return nil
        }
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__RequestOp> {
        var message = Etcdserverpb__RequestOp()
        etcdserverpb__request_op__init(&message)
        switch self {
        case .range(let request):
            message.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE
            message.request_range = request.cMessage(in: &arena)
        case .put(let request):
            message.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT
            message.request_put = request.cMessage(in: &arena)
        case .deleteRange(let request):
            message.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE
            message.request_delete_range = request.cMessage(in: &arena)
        case .txn(let request):
            message.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN
            message.request_txn = request.cMessage(in: &arena)
        }
        return arena.object(message)
    }
}

extension EtcdResponseOp {
    /// Nil for an op without a response, which etcd never sends.
    init?(_ message: Etcdserverpb__ResponseOp) {
        switch message.response_case {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE: self = .range(EtcdRangeResponse(message.response_range.pointee))
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT: self = .put(EtcdPutResponse(message.response_put.pointee))
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE: self = .deleteRange(EtcdDeleteRangeResponse(message.response_delete_range.pointee))
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN: self = .txn(EtcdTxnResponse(message.response_txn.pointee))
        default: return nil
        }
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__ResponseOp> {
        var message = Etcdserverpb__ResponseOp()
        etcdserverpb__response_op__init(&message)
        switch self {
        case .range(let response):
            message.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE
            message.response_range = response.cMessage(in: &arena)
        case .put(let response):
            message.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT
            message.response_put = response.cMessage(in: &arena)
        case .deleteRange(let response):
            message.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE
            message.response_delete_range = response.cMessage(in: &arena)
        case .txn(let response):
            message.response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN
            message.response_txn = response.cMessage(in: &arena)
        }
        return arena.object(message)
    }
}

extension EtcdTxnRequest {
    init(_ message: Etcdserverpb__TxnRequest) {
        self.init(
            compare: elements(message.compare, count: message.n_compare).map(EtcdCompare.init),
            success: elements(message.success, count: message.n_success).compactMap(EtcdRequestOp.init),
            failure: elements(message.failure, count: message.n_failure).compactMap(EtcdRequestOp.init)
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__TxnRequest> {
        var message = Etcdserverpb__TxnRequest()
        etcdserverpb__txn_request__init(&message)
        message.n_compare = compare.count
        message.compare = arena.array(compare.map { $0.cMessage(in: &arena) })
        message.n_success = success.count
        message.success = arena.array(success.map { $0.cMessage(in: &arena) })
        message.n_failure = failure.count
        message.failure = arena.array(failure.map { $0.cMessage(in: &arena) })
        return arena.object(message)
    }
}

extension EtcdTxnResponse {
    init(_ message: Etcdserverpb__TxnResponse) {
        self.init(
            header: EtcdResponseHeader(message.header),
            succeeded: message.succeeded != 0,
            responses: elements(message.responses, count: message.n_responses).compactMap(EtcdResponseOp.init)
        )
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__TxnResponse> {
        var message = Etcdserverpb__TxnResponse()
        etcdserverpb__txn_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.succeeded = succeeded ? 1 : 0
        message.n_responses = responses.count
        message.responses = arena.array(responses.map { $0.cMessage(in: &arena) })
        return arena.object(message)
    }
}

extension EtcdLeaseGrantRequest {
    init(_ message: Etcdserverpb__LeaseGrantRequest) {
        self.init(ttlSeconds: message.ttl, id: message.id)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseGrantRequest> {
        var message = Etcdserverpb__LeaseGrantRequest()
        etcdserverpb__lease_grant_request__init(&message)
        message.ttl = ttlSeconds
        message.id = id
        return arena.object(message)
    }
}

extension EtcdLeaseGrantResponse {
    init(_ message: Etcdserverpb__LeaseGrantResponse) {
        self.init(header: EtcdResponseHeader(message.header), id: message.id, ttlSeconds: message.ttl, error: string(message.error))
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseGrantResponse> {
        var message = Etcdserverpb__LeaseGrantResponse()
        etcdserverpb__lease_grant_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.id = id
        message.ttl = ttlSeconds
        message.error = arena.string(error)
        return arena.object(message)
    }
}

extension EtcdLeaseRevokeRequest {
    init(_ message: Etcdserverpb__LeaseRevokeRequest) {
        self.init(id: message.id)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseRevokeRequest> {
        var message = Etcdserverpb__LeaseRevokeRequest()
        etcdserverpb__lease_revoke_request__init(&message)
        message.id = id
        return arena.object(message)
    }
}

extension EtcdLeaseRevokeResponse {
    init(_ message: Etcdserverpb__LeaseRevokeResponse) {
        self.init(header: EtcdResponseHeader(message.header))
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseRevokeResponse> {
        var message = Etcdserverpb__LeaseRevokeResponse()
        etcdserverpb__lease_revoke_response__init(&message)
        message.header = header.cMessage(in: &arena)
        return arena.object(message)
    }
}

extension EtcdLeaseKeepAliveRequest {
    init(_ message: Etcdserverpb__LeaseKeepAliveRequest) {
        self.init(id: message.id)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseKeepAliveRequest> {
        var message = Etcdserverpb__LeaseKeepAliveRequest()
        etcdserverpb__lease_keep_alive_request__init(&message)
        message.id = id
        return arena.object(message)
    }
}

extension EtcdLeaseKeepAliveResponse {
    init(_ message: Etcdserverpb__LeaseKeepAliveResponse) {
        self.init(header: EtcdResponseHeader(message.header), id: message.id, ttlSeconds: message.ttl)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseKeepAliveResponse> {
        var message = Etcdserverpb__LeaseKeepAliveResponse()
        etcdserverpb__lease_keep_alive_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.id = id
        message.ttl = ttlSeconds
        return arena.object(message)
    }
}

extension EtcdLeaseTimeToLiveRequest {
    init(_ message: Etcdserverpb__LeaseTimeToLiveRequest) {
        self.init(id: message.id, keys: message.keys != 0)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseTimeToLiveRequest> {
        var message = Etcdserverpb__LeaseTimeToLiveRequest()
        etcdserverpb__lease_time_to_live_request__init(&message)
        message.id = id
        message.keys = keys ? 1 : 0
        return arena.object(message)
    }
}

extension EtcdLeaseTimeToLiveResponse {
    init(_ message: Etcdserverpb__LeaseTimeToLiveResponse) {
        let keys = message.keys.map { pointer in (0..<message.n_keys).map { bytes(pointer[$0]) } } ?? []
        self.init(header: EtcdResponseHeader(message.header), id: message.id, ttlSeconds: message.ttl, grantedTTLSeconds: message.grantedttl, keys: keys)
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__LeaseTimeToLiveResponse> {
        var message = Etcdserverpb__LeaseTimeToLiveResponse()
        etcdserverpb__lease_time_to_live_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.id = id
        message.ttl = ttlSeconds
        message.grantedttl = grantedTTLSeconds
        message.n_keys = keys.count
        message.keys = arena.values(keys.map { arena.bytes($0) })
        return arena.object(message)
    }
}

extension EtcdAuthenticateRequest {
    init(_ message: Etcdserverpb__AuthenticateRequest) {
        self.init(name: string(message.name), password: string(message.password))
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__AuthenticateRequest> {
        var message = Etcdserverpb__AuthenticateRequest()
        etcdserverpb__authenticate_request__init(&message)
        message.name = arena.string(name)
        message.password = arena.string(password)
        return arena.object(message)
    }
}

extension EtcdAuthenticateResponse {
    init(_ message: Etcdserverpb__AuthenticateResponse) {
        self.init(header: EtcdResponseHeader(message.header), token: string(message.token))
    }

    func cMessage(in arena: inout EncodeArena) -> UnsafeMutablePointer<Etcdserverpb__AuthenticateResponse> {
        var message = Etcdserverpb__AuthenticateResponse()
        etcdserverpb__authenticate_response__init(&message)
        message.header = header.cMessage(in: &arena)
        message.token = arena.string(token)
        return arena.object(message)
    }
}
