import Foundation
import LDLMClient
import LDLMGRPC
import LDLMProtocol
import NIOPosix
import XCTest

struct TimedOut: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "did not finish within \(seconds) s" }
}

/// Fails instead of hanging: `operation` must honour cancellation.
func withTimeout<T: Sendable>(_ seconds: Double, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut(seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// Short keepalive and few reconnect attempts, so failures show in well under a second.
func makeClient(
    _ servers: [ServerProcess],
    password: String? = nil,
    configure: (inout LDLMClient.Configuration) -> Void = { _ in }
) throws -> LDLMClient {
    try makeClient(shards: servers.map { [$0.address] }, password: password, configure: configure)
}

/// As above, for shards listed by their replicas' addresses.
func makeClient(
    shards: [[String]],
    password: String? = nil,
    configure: (inout LDLMClient.Configuration) -> Void = { _ in }
) throws -> LDLMClient {
    var configuration = LDLMClient.Configuration(shards: shards)
    configuration.password = password
    configuration.keepalive = LDLMClient.Keepalive(interval: .milliseconds(200), timeout: .milliseconds(500))
    configuration.connectTimeout = .seconds(2)
    configuration.reconnect = LDLMClient.Backoff(initialDelay: .milliseconds(50), maximumDelay: .milliseconds(200), attempts: 3)
    configure(&configuration)
    return try LDLMClient(configuration: configuration)
}

/// A lock name no other test uses.
func uniqueName(_ label: String = #function) -> String {
    "\(label)-\(UUID().uuidString)"
}

func assertThrows<T>(
    _ expression: @autoclosure () async throws -> T,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ check: (Error) -> Bool
) async {
    do {
        let value = try await expression()
        XCTFail("expected an error, got \(value)", file: file, line: line)
    } catch {
        XCTAssertTrue(check(error), "unexpected error: \(error)", file: file, line: line)
    }
}

func elapsed(since start: ContinuousClock.Instant) -> Double {
    let duration = ContinuousClock.now - start
    return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// Unlocks by key over a raw connection of its own, as another client could:
/// the holder's session learns of it only when its next renew fails.
func unlockFromAnotherSession(name: String, key: String, port: Int) async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let response = try await LDLMClientConnection.connect(host: "127.0.0.1", port: port, group: group).flatMap { connection in
        let answered = connection.eventLoop.makePromise(of: UnlockResponse.self)
        connection.unlock(UnlockRequest(name: name, key: key)) { answered.completeWith($0.mapError { $0 }) }
        let channel = connection.channel
        return answered.futureResult.flatMap { response in channel.close().map { response } }
    }.get()
    XCTAssertTrue(response.unlocked, "\(String(describing: response.error))")
}
