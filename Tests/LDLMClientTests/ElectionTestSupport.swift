import Foundation
import LDLMClient
import NIOConcurrencyHelpers
import XCTest

/// Polls `read` until it returns a value or `seconds` pass.
func poll<T>(_ seconds: Double, _ read: () -> T?) async throws -> T {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if let value = read() { return value }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw TimedOut(seconds: seconds)
}

/// Every role an election reports, as it reports them.
final class RoleLog: Sendable {
    private let state = NIOLockedValueBox((roles: [LeaderElection.Role](), finished: false))

    init(_ election: LeaderElection) {
        Task { [state] in
            for await role in election.roles { state.withLockedValue { $0.roles.append(role) } }
            state.withLockedValue { $0.finished = true }
        }
    }

    var all: [LeaderElection.Role] { state.withLockedValue { $0.roles } }

    /// The roles so far once there are at least `count`.
    func wait(count: Int, within seconds: Double = 3) async throws -> [LeaderElection.Role] {
        try await poll(seconds) { all.count >= count ? all : nil }
    }

    /// Returns once the stream has finished.
    func finished() async {
        _ = try? await poll(60) { state.withLockedValue { $0.finished } ? true : nil }
    }
}

/// The terms `withLeadership` bodies served: who led with which token, and
/// whose body was cancelled.
final class TermLog: Sendable {
    struct Term: Sendable {
        let who: String
        let token: UInt64
    }

    private let state = NIOLockedValueBox((started: [Term](), cancelled: [String]()))

    var started: [Term] { state.withLockedValue { $0.started } }
    var cancelled: [String] { state.withLockedValue { $0.cancelled } }

    /// A body that leads until cancelled.
    func serve(_ who: String, _ token: UInt64) async throws {
        state.withLockedValue { $0.started.append(Term(who: who, token: token)) }
        do {
            try await Task.sleep(for: .seconds(3600))
        } catch {
            state.withLockedValue { $0.cancelled.append(who) }
            throw error
        }
    }

    func wait(count: Int, within seconds: Double = 3) async throws -> [Term] {
        try await poll(seconds) { started.count >= count ? started : nil }
    }
}
