import CEtcdProto
import LDLMEtcd
import LDLMTestSupport
import LDLMProtocol
import NIOPosix
import XCTest

/// The client with etcd auth on: it authenticates with its user before its
/// first call and sends the token as `token` metadata.
final class EtcdAuthTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var cluster: EtcdTestCluster?
    private var clients: [EtcdClient] = []

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() async throws {
        for client in clients {
            await client.close()
        }
        cluster?.stop()
        try await group.shutdownGracefully()
    }

    private func makeClient(_ endpoints: [EtcdEndpoint], user: (name: String, password: String)?) throws -> EtcdClient {
        let client = try EtcdClient(configuration: EtcdClientConfiguration(endpoints: endpoints, user: user), eventLoopGroup: group)
        clients.append(client)
        return client
    }

    /// Creates `root` with the root role and turns auth on, as `etcdctl user add` and `auth enable` do.
    private func enableAuth(on endpoints: [EtcdEndpoint], rootPassword: String) async throws {
        let admin = try makeClient(endpoints, user: nil)
        let _: HeaderOnlyResponse = try await admin.call(
            "/etcdserverpb.Auth/UserAdd", AuthRequest.userAdd(name: "root", password: rootPassword), isRetrySafe: false, timeout: nil
        )
        let _: HeaderOnlyResponse = try await admin.call(
            "/etcdserverpb.Auth/UserGrantRole", AuthRequest.grantRole(user: "root", role: "root"), isRetrySafe: false, timeout: nil
        )
        let _: HeaderOnlyResponse = try await admin.call("/etcdserverpb.Auth/AuthEnable", AuthRequest.enable, isRetrySafe: false, timeout: nil)
    }

    func testCallsAuthenticateWithTheConfiguredUser() async throws {
        // Simple tokens expire after a second unused: the client must notice and authenticate again.
        let cluster = try EtcdTestCluster(size: 1, arguments: ["--auth-token", "simple", "--auth-token-ttl", "1"])
        self.cluster = cluster
        try await cluster.waitUntilServing(group: group)
        try await enableAuth(on: cluster.endpoints, rootPassword: "s3cret")

        let root = try makeClient(cluster.endpoints, user: (name: "root", password: "s3cret"))
        try await root.put(EtcdPutRequest(key: Array("k".utf8), value: [1]))
        let range = try await root.range(EtcdRangeRequest(key: Array("k".utf8)))
        XCTAssertEqual(range.count, 1)
        try await Task.sleep(for: .milliseconds(2500))
        try await root.put(EtcdPutRequest(key: Array("k".utf8), value: [2]))
        let renewed = try await root.range(EtcdRangeRequest(key: Array("k".utf8)))
        XCTAssertEqual(renewed.kvs.map(\.value), [[2]])

        let wrong = try makeClient(cluster.endpoints, user: (name: "root", password: "guess"))
        do {
            try await wrong.authenticate()
            XCTFail("a wrong password authenticated")
        } catch let error as EtcdError {
            XCTAssertEqual(error.kind, .authenticationFailed, "\(error)")
        }

        let anonymous = try makeClient(cluster.endpoints, user: nil)
        do {
            _ = try await anonymous.range(EtcdRangeRequest(key: Array("k".utf8)))
            XCTFail("a call without a token was served")
        } catch let error as EtcdError {
            XCTAssertEqual(error.kind, .rejected, "\(error)")
            XCTAssertEqual(error.status.message, "etcdserver: user name is empty")
        }
    }
}

/// The auth management requests the test needs to turn auth on.
private enum AuthRequest: LDLMMessage {
    case userAdd(name: String, password: String)
    case grantRole(user: String, role: String)
    case enable

    init(serializedBytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        throw MessageDecodingError("only sent")
    }

    func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        EncodeArena.with { arena in
            switch self {
            case .userAdd(let name, let password):
                var message = Etcdserverpb__AuthUserAddRequest()
                etcdserverpb__auth_user_add_request__init(&message)
                message.name = arena.string(name)
                message.password = arena.string(password)
                return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__auth_user_add_request__get_packed_size, pack: etcdserverpb__auth_user_add_request__pack)
            case .grantRole(let user, let role):
                var message = Etcdserverpb__AuthUserGrantRoleRequest()
                etcdserverpb__auth_user_grant_role_request__init(&message)
                message.user = arena.string(user)
                message.role = arena.string(role)
                return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__auth_user_grant_role_request__get_packed_size, pack: etcdserverpb__auth_user_grant_role_request__pack)
            case .enable:
                var message = Etcdserverpb__AuthEnableRequest()
                etcdserverpb__auth_enable_request__init(&message)
                return encodeCMessage(&message, prefixLength: prefixLength, packedSize: etcdserverpb__auth_enable_request__get_packed_size, pack: etcdserverpb__auth_enable_request__pack)
            }
        }
    }
}

/// The answers of the auth management calls: a header and nothing else.
private struct HeaderOnlyResponse: LDLMMessage {
    init(serializedBytes bytes: UnsafeRawBufferPointer) throws(MessageDecodingError) {
        try decodeCMessage(bytes, unpack: etcdserverpb__auth_enable_response__unpack, free: etcdserverpb__auth_enable_response__free_unpacked) { _ in () }
    }

    func serializedBytes(reservingPrefix prefixLength: Int) -> [UInt8] {
        [UInt8](repeating: 0, count: prefixLength)
    }
}
