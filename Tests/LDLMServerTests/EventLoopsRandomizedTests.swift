import LDLMCore
import LDLMGRPC
import LDLMHTTP2
import LDLMProtocol
import LDLMTestSupport
import Logging
import NIOCore
import NIOPosix
import XCTest

@testable import LDLMServer

/// The real server core on four event loops, over loopback TCP, driven by
/// many connections doing seeded random Lock, TryLock, Unlock, Renew,
/// deadlines, resets and disconnects. Checked all along: never more holders
/// than a lock's size, no key granted twice; checked at the end: waiters
/// whose queueing was confirmed were granted in that order (fencing tokens),
/// every call was answered, and the server holds exactly what the clients
/// believe they hold, then nothing once they are gone.
final class EventLoopsRandomizedTests: XCTestCase {
    func testRandomCallsFromManyConnectionsOverFourLoops() throws {
        for seed: UInt64 in [7, 8, 9] {
            try run(seed: seed, steps: 3_000)
        }
    }

    private func run(seed: UInt64, steps: Int) throws {
        let serverLoops = MultiThreadedEventLoopGroup(numberOfThreads: 4)
        let clientLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer {
            try? clientLoops.syncShutdownGracefully()
            try? serverLoops.syncShutdownGracefully()
        }
        let loops = Array(serverLoops.makeIterator())
        let core = LockServerCore(
            eventLoop: loops[0],
            clock: EventLoopClock(),
            config: ServerConfig(),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            otherLoops: Array(loops.dropFirst())
        )
        let listener = try ServerBootstrap(group: loops[0], childGroup: serverLoops)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try core.configure(channel) } }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        defer { try? listener.close().wait() }

        let driver = RandomDriver(seed: seed, loop: clientLoops.next(), port: listener.localAddress!.port!)
        try driver.loop.submit { driver.start(steps: steps) }.wait()
        try driver.finished.futureResult.wait()
        try driver.loop.submit { driver.failures }.wait().forEach { XCTFail("seed \(seed): \($0)") }
        XCTAssertGreaterThan(try driver.loop.submit { driver.orderedPairs }.wait(), 100, "seed \(seed): too few waiters granted to check their order")

        // What the clients hold, the server holds, once it has seen every
        // disconnect (the connections made again are open) and before any client leaves.
        try waitUntil(core, on: loops[0]) { $0.sessionCount == RandomDriver.connections }
        let believed = try driver.loop.submit { driver.heldCounts() }.wait()
        let held = try loops[0].submit {
            Dictionary(uniqueKeysWithValues: RandomDriver.names.map { ($0.name, core.manager.lockInfo(name: $0.name)?.holders.count ?? 0) })
        }.wait()
        XCTAssertEqual(held, believed, "seed \(seed): server and clients disagree on the holders")

        try driver.loop.submit { driver.disconnectAll() }.wait()
        try waitUntil(core, on: loops[0]) { $0.sessionCount == 0 }
        XCTAssertEqual(try loops[0].submit { core.sessionCount }.wait(), 0, "seed \(seed)")
        XCTAssertEqual(try loops[0].submit { core.lockCount }.wait(), 0, "seed \(seed): a lock outlived every session")
    }

    /// Polls the core on its owner loop for up to five seconds.
    private func waitUntil(_ core: LockServerCore, on owner: EventLoop, _ condition: @escaping (LockServerCore) -> Bool) throws {
        for _ in 0..<500 {
            if try owner.submit({ condition(core) }).wait() { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
    }
}

/// The clients and their model of who holds what, all on one client loop.
private final class RandomDriver {
    static let names: [(name: String, size: Int32)] = [("a", 1), ("b", 1), ("c", 2), ("d", 1)]
    static let connections = 24

    let loop: EventLoop
    let finished: EventLoopPromise<Void>
    private let port: Int
    private var random: SplitMix64
    private var clients: [RawGRPCClient?] = []
    private var stepsLeft = 0
    /// Increases with every request sent and every answer taken.
    private var clock = 0
    private var holders: [String: [(client: ObjectIdentifier, key: String)]] = [:]
    private var grantedKeys: Set<String> = []
    private var waiters: [Waiter] = []
    private(set) var failures: [String] = []
    /// Pairs of granted waiters whose order the check could tell.
    private(set) var orderedPairs = 0

    /// A `Lock` call and what became of it.
    private final class Waiter {
        let name: String
        let sentAt: Int
        /// When a later call on the same connection was answered: from then
        /// on the owner had queued (or answered) this one.
        var confirmedAt: Int?
        var fencingToken: UInt64?

        init(name: String, sentAt: Int) {
            self.name = name
            self.sentAt = sentAt
        }
    }

    init(seed: UInt64, loop: EventLoop, port: Int) {
        random = SplitMix64(seed: seed)
        self.loop = loop
        self.port = port
        finished = loop.makePromise()
    }

    func start(steps: Int) {
        stepsLeft = steps
        clients = Array(repeating: nil, count: Self.connections)
        for slot in clients.indices { connect(slot) }
        loop.scheduleTask(in: .milliseconds(20)) { self.step() }
    }

    private func connect(_ slot: Int) {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: "127.0.0.1", port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let client = RawGRPCClient()
                    try! channel.pipeline.syncOperations.addHandler(client)
                    self.clients[slot] = client
                case .failure(let error):
                    self.failures.append("connect: \(error)")
                }
            }
    }

    private func step() {
        guard stepsLeft > 0 else { return settle() }
        stepsLeft -= 1
        let slot = random.below(clients.count)
        if let client = clients[slot] {
            act(on: client, slot: slot)
        }
        if random.percent(30) {
            loop.execute { self.step() }
        } else {
            loop.scheduleTask(in: .microseconds(Int64(random.below(800)))) { self.step() }
        }
    }

    private func act(on client: RawGRPCClient, slot: Int) {
        let (name, size) = random.pick(Self.names)
        let mine = holders.flatMap { name, holds in holds.filter { $0.client == ObjectIdentifier(client) }.map { (name, $0.key) } }
        // Holds are short, so waiters get their turn before their deadlines.
        if let held = mine.first, random.percent(60) {
            return unlock(held.0, key: held.1, on: client)
        }
        let roll = random.below(100)
        switch roll {
        case 0..<55:
            lock(name, size: size, on: client)
        case 55..<75:
            clock += 1
            client.call("TryLock", TryLockRequest(name: name, size: size)) { answer in
                self.taken(answer, name: name, size: size, client: client, waiter: nil)
            }
        case 75..<87:
            guard let (name, key) = mine.first else { return }
            clock += 1
            client.call("Renew", RenewRequest(name: name, key: key, lockTimeoutSeconds: 3_600)) { answer in
                self.clock += 1
                guard answer.status != nil, self.holders[name, default: []].contains(where: { $0.key == key }) else { return }
                if (try? answer.decode(LockResponse.self))?.locked != true { self.failures.append("renewing a held lock failed") }
            }
        case 87..<94:
            // Cancelled with a grant perhaps on its way: what it held is
            // unknown, so the connection goes, taking any such hold with it.
            guard let stream = client.newestOpenCall else { return }
            client.reset(stream)
            disconnect(slot)
        default:
            disconnect(slot)
        }
    }

    private func unlock(_ name: String, key: String, on client: RawGRPCClient) {
        // Released from the moment it is sent: a grant the unlock lets in cannot come before it.
        holders[name]?.removeAll { $0.key == key }
        clock += 1
        client.call("Unlock", UnlockRequest(name: name, key: key)) { answer in
            self.clock += 1
            guard answer.status != nil else { return }
            if (try? answer.decode(UnlockResponse.self))?.unlocked != true { self.failures.append("unlock of a held lock failed") }
        }
    }

    private func lock(_ name: String, size: Int32, on client: RawGRPCClient) {
        // Every wait has a deadline, short ones racing their grants, so no
        // two clients wait on each other for ever.
        let timeout = random.percent(30) ? "\(1 + random.below(5))m" : "\(20 + random.below(300))m"
        clock += 1
        let waiter = Waiter(name: name, sentAt: clock)
        waiters.append(waiter)
        client.call("Lock", LockRequest(name: name, size: size), timeout: timeout) { answer in
            self.taken(answer, name: name, size: size, client: client, waiter: waiter)
        }
        // A call the owner cannot fail, answered after it has queued the Lock.
        client.call("Renew", RenewRequest(name: "nowhere", key: "none", lockTimeoutSeconds: 1)) { answer in
            self.clock += 1
            if answer.status != nil, waiter.confirmedAt == nil { waiter.confirmedAt = self.clock }
        }
    }

    private func taken(_ answer: RawAnswer, name: String, size: Int32, client: RawGRPCClient, waiter: Waiter?) {
        clock += 1
        guard answer.status == 0, let response = try? answer.decode(LockResponse.self), response.locked else { return }
        guard client.isOpen else { return }
        if !grantedKeys.insert(response.key).inserted { failures.append("key \(response.key) of \(name) granted twice") }
        waiter?.fencingToken = response.fencingToken
        holders[name, default: []].append((ObjectIdentifier(client), response.key))
        if holders[name, default: []].count > Int(size) {
            failures.append("\(name) of size \(size) has \(holders[name, default: []].count) holders")
        }
    }

    private func disconnect(_ slot: Int) {
        guard let client = clients[slot] else { return }
        clients[slot] = nil
        for name in holders.keys { holders[name]?.removeAll { $0.client == ObjectIdentifier(client) } }
        client.close()
        connect(slot)
    }

    /// Waits for every call to be answered, then checks the grant order.
    private func settle() {
        guard clients.allSatisfy({ $0?.openCallCount == 0 }) else {
            loop.scheduleTask(in: .milliseconds(10)) { self.settle() }
            return
        }
        for name in Self.names.map(\.name) {
            let granted = waiters.filter { $0.name == name && $0.fencingToken != nil }
            for earlier in granted {
                guard let confirmed = earlier.confirmedAt else { continue }
                for later in granted where later.sentAt > confirmed {
                    orderedPairs += 1
                    if later.fencingToken! < earlier.fencingToken! {
                        failures.append("\(name): a Lock sent after another was queued was granted before it")
                    }
                }
            }
        }
        finished.succeed()
    }

    func heldCounts() -> [String: Int] {
        Dictionary(uniqueKeysWithValues: Self.names.map { ($0.name, holders[$0.name, default: []].count) })
    }

    func disconnectAll() {
        for client in clients { client?.close() }
        clients = []
    }
}

extension SplitMix64 {
    fileprivate mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    fileprivate mutating func percent(_ chance: Int) -> Bool { below(100) < chance }
    fileprivate mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// A call's end as a raw client sees it: the gRPC status (nil when the
/// stream or connection went without one) and the response body.
private struct RawAnswer {
    var status: Int?
    var body: [UInt8] = []

    func decode<Response: LDLMMessage>(_: Response.Type) throws -> Response {
        try Array(body.dropFirst(GRPCMessageFraming.prefixLength)).withUnsafeBytes { try Response(serializedBytes: $0) }
    }
}

/// An HTTP/2 gRPC client connection, on its channel's loop.
private final class RawGRPCClient: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let http2 = try! HTTP2Connection(role: .client)
    private var context: ChannelHandlerContext?
    private var calls: [Int32: (answer: RawAnswer, done: (RawAnswer) -> Void)] = [:]
    private(set) var isOpen = true

    var openCallCount: Int { calls.count }
    var newestOpenCall: Int32? { calls.keys.max() }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        flush()
    }

    func call(_ method: String, _ message: some LDLMMessage, timeout: String? = nil, done: @escaping (RawAnswer) -> Void) {
        var headers = [
            HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
            HTTP2Header(":path", "/ldlm.LDLM/\(method)"), HTTP2Header(":authority", "localhost"),
            HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers"),
        ]
        if let timeout { headers.append(HTTP2Header("grpc-timeout", timeout)) }
        guard isOpen, let streamID = try? http2.sendRequest(headers: headers, body: GRPCMessageFraming.frame(message.serializedBytes())) else {
            return done(RawAnswer(status: nil))
        }
        calls[streamID] = (RawAnswer(status: nil), done)
        flush()
    }

    func reset(_ streamID: Int32) {
        http2.resetStream(streamID, errorCode: HTTP2ErrorCode.cancel)
        flush()
    }

    func close() {
        isOpen = false
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        do {
            try http2.receive(Array(buffer.readableBytesView))
        } catch {
            return context.close(promise: nil)
        }
        for event in http2.takeEvents() {
            switch event {
            case .headers(let streamID, let headers):
                if let code = headers.fields.first(where: { $0.name == "grpc-status" }).flatMap({ Int($0.value) }) {
                    calls[streamID]?.answer.status = code
                }
            case .data(let streamID, let bytes):
                calls[streamID]?.answer.body += bytes
            case .streamClosed(let streamID, _):
                if let call = calls.removeValue(forKey: streamID) { call.done(call.answer) }
            default:
                break
            }
        }
        flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isOpen = false
        let ended = calls
        calls = [:]
        for call in ended.values { call.done(RawAnswer(status: nil)) }
        self.context = nil
    }

    private func flush() {
        guard let context, let output = try? http2.drainOutput(), !output.isEmpty else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: output)), promise: nil)
    }
}
