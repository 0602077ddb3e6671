import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import NIOCore
import NIOSSL

/// etcd's KV, lease and auth calls over one HTTP/2 connection to one member
/// at a time.
///
/// The endpoints are tried in order: a connection goes to the first that
/// answers, and when a member fails the next connection starts with the one
/// after it. A call is sent again, to the next member, only when that cannot
/// apply it twice: when it surely never reached etcd (connect refused, stream
/// refused, etcd's "no leader"), or when repeating it changes nothing (range,
/// lease keepalive and time-to-live, authenticate). Any other failure after
/// sending is an ``EtcdError`` of kind ``EtcdError/Kind/indeterminate``.
public final class EtcdClient: @unchecked Sendable {
    private let configuration: EtcdClientConfiguration
    /// Owns every mutable property below: they are touched only on it.
    private let eventLoop: EventLoop
    private let tls: NIOSSLContext?
    private let channelOptions: GRPCClientChannelOptions
    private var connection: EtcdConnection?
    /// Shared by the calls that need a connection while one is being made.
    private var connecting: EventLoopFuture<EtcdConnection>?
    /// Where the next connection starts in the endpoint list.
    private var firstEndpointIndex = 0
    private var token: String?
    private var authenticating: EventLoopFuture<String>?
    private var isClosed = false

    private static let authenticatePath = "/etcdserverpb.Auth/Authenticate"
    /// etcd then refuses a call at once with "no leader" when the member has
    /// none, instead of waiting and maybe timing out after queueing it.
    private static let requireLeader = HTTP2Header("hasleader", "true")

    public init(configuration: EtcdClientConfiguration, eventLoopGroup: EventLoopGroup) throws {
        precondition(!configuration.endpoints.isEmpty, "an etcd client needs at least one endpoint")
        self.configuration = configuration
        self.eventLoop = eventLoopGroup.next()
        self.tls = try configuration.tls?.makeContext()
        self.channelOptions = GRPCClientChannelOptions(
            usesTLS: configuration.tls != nil,
            keepalive: configuration.keepalive.map { (interval: TimeAmount($0.interval), timeout: TimeAmount($0.timeout)) },
            connectTimeout: TimeAmount(configuration.connectTimeout),
            // A member that cannot answer yet is then a failed connect, after
            // which any call may go to the next member, not a failed call.
            waitsForServerPreface: true
        )
    }

    /// Closes the connection; calls in flight fail as indeterminate, later ones as unavailable.
    public func close() async {
        let closed: EventLoopFuture<Void> = eventLoop.flatSubmit {
            self.isClosed = true
            guard let connection = self.connection else { return self.eventLoop.makeSucceededVoidFuture() }
            connection.close(reason: "client closed")
            return connection.channel.closeFuture
        }
        try? await closed.get()
    }

    public func range(_ request: EtcdRangeRequest, timeout: Duration? = nil) async throws -> EtcdRangeResponse {
        try await call("/etcdserverpb.KV/Range", request, isRetrySafe: true, timeout: timeout)
    }

    @discardableResult
    public func put(_ request: EtcdPutRequest, timeout: Duration? = nil) async throws -> EtcdPutResponse {
        try await call("/etcdserverpb.KV/Put", request, isRetrySafe: false, timeout: timeout)
    }

    @discardableResult
    public func deleteRange(_ request: EtcdDeleteRangeRequest, timeout: Duration? = nil) async throws -> EtcdDeleteRangeResponse {
        try await call("/etcdserverpb.KV/DeleteRange", request, isRetrySafe: false, timeout: timeout)
    }

    public func txn(_ request: EtcdTxnRequest, timeout: Duration? = nil) async throws -> EtcdTxnResponse {
        try await call("/etcdserverpb.KV/Txn", request, isRetrySafe: false, timeout: timeout)
    }

    public func leaseGrant(_ request: EtcdLeaseGrantRequest, timeout: Duration? = nil) async throws -> EtcdLeaseGrantResponse {
        try await call("/etcdserverpb.Lease/LeaseGrant", request, isRetrySafe: false, timeout: timeout)
    }

    @discardableResult
    public func leaseRevoke(_ request: EtcdLeaseRevokeRequest, timeout: Duration? = nil) async throws -> EtcdLeaseRevokeResponse {
        try await call("/etcdserverpb.Lease/LeaseRevoke", request, isRetrySafe: false, timeout: timeout)
    }

    /// Renews the lease to its full TTL once. LeaseKeepAlive is a stream;
    /// one request and end-of-stream get exactly one answer. etcd answers a
    /// lease it does not know with TTL 0, which throws ``EtcdError/Kind/leaseNotFound``.
    public func leaseKeepAliveOnce(_ request: EtcdLeaseKeepAliveRequest, timeout: Duration? = nil) async throws -> EtcdLeaseKeepAliveResponse {
        let response: EtcdLeaseKeepAliveResponse = try await call("/etcdserverpb.Lease/LeaseKeepAlive", request, isRetrySafe: true, timeout: timeout)
        guard response.ttlSeconds > 0 else {
            throw EtcdError(.leaseNotFound, status: GRPCStatus(.notFound, "keepalive answered TTL \(response.ttlSeconds) for lease \(request.id)"), endpoint: nil)
        }
        return response
    }

    public func leaseTimeToLive(_ request: EtcdLeaseTimeToLiveRequest, timeout: Duration? = nil) async throws -> EtcdLeaseTimeToLiveResponse {
        try await call("/etcdserverpb.Lease/LeaseTimeToLive", request, isRetrySafe: true, timeout: timeout)
    }

    /// Authenticates with the configured user now (calls do it themselves
    /// when needed), e.g. to find a wrong password at start-up.
    public func authenticate(timeout: Duration? = nil) async throws {
        let deadline = NIODeadline.now() + TimeAmount(timeout ?? configuration.callTimeout)
        _ = try await eventLoop.flatSubmit { self.authenticate(deadline: deadline) }.get()
    }

    private struct Answer {
        let message: ArraySlice<UInt8>
        let endpoint: EtcdEndpoint
    }

    /// ``txn(_:timeout:)`` for a caller on an event loop: completes on the
    /// client's loop, which is the caller's when both share a one-thread group.
    public func submitTxn(_ request: EtcdTxnRequest, timeout: Duration? = nil) -> EventLoopFuture<EtcdTxnResponse> {
        callFuture("/etcdserverpb.KV/Txn", request, isRetrySafe: false, timeout: timeout)
    }

    /// Any unary etcd call by its `:path`, under the same rules as the
    /// methods above; `isRetrySafe` when repeating it changes nothing more.
    package func call<Request: LDLMMessage, Response: LDLMMessage>(
        _ path: String,
        _ request: Request,
        isRetrySafe: Bool,
        timeout: Duration?
    ) async throws -> Response {
        try await callFuture(path, request, isRetrySafe: isRetrySafe, timeout: timeout).get()
    }

    private func callFuture<Request: LDLMMessage, Response: LDLMMessage>(
        _ path: String,
        _ request: Request,
        isRetrySafe: Bool,
        timeout: Duration?
    ) -> EventLoopFuture<Response> {
        let prefixedMessage = request.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
        let deadline = NIODeadline.now() + TimeAmount(timeout ?? configuration.callTimeout)
        return eventLoop.flatSubmit {
            self.send(path, prefixedMessage, isRetrySafe: isRetrySafe, deadline: deadline)
        }.flatMapThrowing { answer in
            do {
                return try Response(serializedBytes: answer.message)
            } catch {
                // etcd said OK, so the call took effect: only its answer is lost.
                throw EtcdError(.indeterminate, status: GRPCStatus(.internal, "cannot decode etcd's answer: \(error)"), endpoint: answer.endpoint.description)
            }
        }
    }

    /// Sends the call, and again to the next member while the failures allow
    /// it (see the type's documentation), each endpoint at most once; an
    /// invalid auth token is renewed once.
    private func send(
        _ path: String,
        _ prefixedMessage: [UInt8],
        isRetrySafe: Bool,
        deadline: NIODeadline,
        attemptsLeft: Int? = nil,
        hasRenewedToken: Bool = false
    ) -> EventLoopFuture<Answer> {
        let attemptsLeft = attemptsLeft ?? configuration.endpoints.count
        return metadata(for: path, deadline: deadline).and(openConnection()).flatMap { metadata, connection in
            let promise = self.eventLoop.makePromise(of: Answer.self)
            let timeout = deadline - .now()
            guard timeout > .zero else {
                promise.fail(EtcdError(.unavailable, status: GRPCStatus(.deadlineExceeded, "deadline passed before the call was sent"), endpoint: nil))
                return promise.futureResult
            }
            connection.call(path: path, prefixedMessage: prefixedMessage, metadata: metadata, timeout: timeout) { response in
                let endpoint = connection.endpoint
                if response.status.code == .ok {
                    guard let message = response.message else {
                        let status = GRPCStatus(.internal, "etcd answered OK without a message")
                        return promise.fail(EtcdError(.indeterminate, status: status, endpoint: endpoint.description))
                    }
                    return promise.succeed(Answer(message: message, endpoint: endpoint))
                }
                let error = EtcdError(status: response.status, mayHaveBeenProcessed: response.mayHaveBeenProcessed, endpoint: endpoint.description)
                if error.kind == .invalidAuthToken, self.configuration.user != nil, !hasRenewedToken {
                    self.token = nil
                    return promise.completeWith(self.send(path, prefixedMessage, isRetrySafe: isRetrySafe, deadline: deadline, attemptsLeft: attemptsLeft, hasRenewedToken: true))
                }
                guard attemptsLeft > 1, Self.mayTryNextMember(after: error, isRetrySafe: isRetrySafe) else {
                    return promise.fail(error)
                }
                self.leave(connection)
                promise.completeWith(self.send(path, prefixedMessage, isRetrySafe: isRetrySafe, deadline: deadline, attemptsLeft: attemptsLeft - 1, hasRenewedToken: hasRenewedToken))
            }
            return promise.futureResult
        }
    }

    private static func mayTryNextMember(after error: EtcdError, isRetrySafe: Bool) -> Bool {
        switch error.kind {
        case .unavailable, .noLeader: return true
        // Past the deadline another member would get no time either.
        case .indeterminate: return isRetrySafe && error.status.code != .deadlineExceeded
        default: return false
        }
    }

    /// The metadata of a call: `hasleader`, and the auth token when a user is configured.
    private func metadata(for path: String, deadline: NIODeadline) -> EventLoopFuture<[HTTP2Header]> {
        guard configuration.user != nil, path != Self.authenticatePath else {
            return eventLoop.makeSucceededFuture([Self.requireLeader])
        }
        if let token {
            return eventLoop.makeSucceededFuture([Self.requireLeader, HTTP2Header("token", token)])
        }
        return authenticate(deadline: deadline).map { [Self.requireLeader, HTTP2Header("token", $0)] }
    }

    private func authenticate(deadline: NIODeadline) -> EventLoopFuture<String> {
        guard let user = configuration.user else {
            return eventLoop.makeFailedFuture(EtcdError(.authenticationFailed, status: GRPCStatus(.invalidArgument, "no user configured"), endpoint: nil))
        }
        if let authenticating { return authenticating }
        let request = EtcdAuthenticateRequest(name: user.name, password: user.password)
        let prefixedMessage = request.serializedBytes(reservingPrefix: GRPCMessageFraming.prefixLength)
        let future = send(Self.authenticatePath, prefixedMessage, isRetrySafe: true, deadline: deadline).flatMapThrowing { answer in
            do {
                let token = try EtcdAuthenticateResponse(serializedBytes: answer.message).token
                self.token = token
                return token
            } catch {
                throw EtcdError(.indeterminate, status: GRPCStatus(.internal, "cannot decode etcd's answer: \(error)"), endpoint: answer.endpoint.description)
            }
        }
        authenticating = future
        future.whenComplete { _ in self.authenticating = nil }
        return future
    }

    /// The open connection, or a new one to the first endpoint that takes it.
    private func openConnection() -> EventLoopFuture<EtcdConnection> {
        if isClosed {
            return eventLoop.makeFailedFuture(EtcdError(.unavailable, status: GRPCStatus(.unavailable, "client closed"), endpoint: nil))
        }
        if let connection {
            if connection.isUsable { return eventLoop.makeSucceededFuture(connection) }
            // Lost, or told GOAWAY: start after it even if its close is not handled yet.
            leave(connection)
        }
        if let connecting {
            return connecting
        }
        let count = configuration.endpoints.count
        let order = (0..<count).map { (firstEndpointIndex + $0) % count }
        let future = connect(trying: order[...], failures: [])
        connecting = future
        future.whenComplete { _ in self.connecting = nil }
        return future
    }

    private func connect(trying order: ArraySlice<Int>, failures: [String]) -> EventLoopFuture<EtcdConnection> {
        guard let index = order.first else {
            let status = GRPCStatus(.unavailable, "no etcd endpoint reachable: \(failures.joined(separator: "; "))")
            return eventLoop.makeFailedFuture(EtcdError(.unavailable, status: status, endpoint: nil))
        }
        let endpoint = configuration.endpoints[index]
        return EtcdConnection.connect(to: endpoint, endpointIndex: index, tls: tls, options: channelOptions, eventLoop: eventLoop)
            .flatMapThrowing { connection in
                try self.adopt(connection)
            }
            .flatMapError { error in
                if let error = error as? EtcdError { return self.eventLoop.makeFailedFuture(error) }
                return self.connect(trying: order.dropFirst(), failures: failures + ["\(endpoint): \(error)"])
            }
    }

    private func adopt(_ connection: EtcdConnection) throws -> EtcdConnection {
        guard !isClosed else {
            connection.close(reason: "client closed")
            throw EtcdError(.unavailable, status: GRPCStatus(.unavailable, "client closed"), endpoint: nil)
        }
        self.connection = connection
        firstEndpointIndex = connection.endpointIndex
        connection.channel.closeFuture.whenComplete { _ in
            if self.connection === connection { self.leave(connection) }
        }
        return connection
    }

    /// New calls go to the next member; the calls in flight on this one finish there.
    private func leave(_ connection: EtcdConnection) {
        guard self.connection === connection else { return }
        self.connection = nil
        firstEndpointIndex = (connection.endpointIndex + 1) % configuration.endpoints.count
        connection.retire()
    }
}
