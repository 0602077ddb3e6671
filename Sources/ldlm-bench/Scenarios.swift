import Foundation
import LDLMClient
import LDLMGRPC
import LDLMProtocol
import NIOCore

/// A finished run's numbers, printed as text or JSON.
struct Report {
    var fields: [(String, Any)] = []

    mutating func add(_ key: String, _ value: Any) {
        fields.append((key, value))
    }

    func json() -> String {
        let object = Dictionary(fields, uniquingKeysWith: { $1 })
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    func text() -> String {
        fields.map { key, value in
            if let nested = value as? [String: Any] {
                let inner = nested.keys.sorted().map { "\($0)=\(format(nested[$0]!))" }.joined(separator: " ")
                return "\(key): \(inner)"
            }
            return "\(key): \(format(value))"
        }.joined(separator: "\n")
    }

    private func format(_ value: Any) -> String {
        if let number = value as? Double { return String(format: "%.3f", number) }
        return "\(value)"
    }
}

/// The closed-loop scenarios: each returns the operation its workers repeat.
enum Scenarios {
    /// Lock then Unlock on a name of the worker's own: the uncontended pair.
    static func pair(_ connections: [LDLMClientConnection], streams: Int) -> Operation {
        { worker, finish in
            let connection = connections[worker % connections.count]
            let name = lockName("pair-", worker)
            connection.lock(LockRequest(name: name)) { result in
                switch result {
                case .failure(let status): finish(errorLabel(status))
                case .success(let response):
                    if let error = response.error { return finish(errorLabel(error)) }
                    connection.unlock(UnlockRequest(name: name, key: response.key)) { result in
                        switch result {
                        case .failure(let status): finish(errorLabel(status))
                        case .success(let response): finish(response.error.map(errorLabel))
                        }
                    }
                }
            }
        }
    }

    /// TryLock on a name another session holds: every call answers `locked: false`.
    static func tryLock(_ connections: [LDLMClientConnection], heldName: String) -> Operation {
        { worker, finish in
            connections[worker % connections.count].tryLock(TryLockRequest(name: heldName)) { result in
                switch result {
                case .failure(let status): finish(errorLabel(status))
                case .success(let response):
                    if let error = response.error { return finish(errorLabel(error)) }
                    finish(response.locked ? "unexpected:granted" : nil)
                }
            }
        }
    }

    /// Renew of a leased lock the worker holds.
    static func renew(_ connections: [LDLMClientConnection], keys: [String]) -> Operation {
        { worker, finish in
            let name = lockName("renew-", worker)
            connections[worker % connections.count].renew(RenewRequest(name: name, key: keys[worker], lockTimeoutSeconds: 300)) { result in
                switch result {
                case .failure(let status): finish(errorLabel(status))
                case .success(let response): finish(response.error.map(errorLabel))
                }
            }
        }
    }
}

/// Many workers on one name (size 1: contended; size S: sized). Measures the
/// hand-off, from one holder's unlock being answered to the next grant being
/// answered, and how evenly grants are spread.
final class HandOffScenario {
    private let connections: [LDLMClientConnection]
    private let name: String
    private let size: Int32
    private(set) var handOff = LatencyHistogram()
    /// From sending an unlock to reading the grant it caused: includes the
    /// unlock's trip to the server and the grant's trip back.
    private(set) var unlockSentToGrant = LatencyHistogram()
    private(set) var grants: [Int]
    private var unlocksSent: [UInt64] = []
    private var unlocksAwaitingGrant: [UInt64] = []
    private var grantsAwaitingUnlock = 0
    private var measuring = false

    init(connections: [LDLMClientConnection], workers: Int, name: String, size: Int32) {
        self.connections = connections
        self.name = name
        self.size = size
        self.grants = Array(repeating: 0, count: workers)
    }

    func startMeasuring() {
        measuring = true
        handOff.reset()
        unlockSentToGrant.reset()
        unlocksSent.removeAll()
        grants = Array(repeating: 0, count: grants.count)
    }

    var operation: Operation {
        { worker, finish in
            let connection = self.connections[worker % self.connections.count]
            connection.lock(LockRequest(name: self.name, size: self.size == 1 ? nil : self.size)) { result in
                switch result {
                case .failure(let status): return finish(errorLabel(status))
                case .success(let response):
                    if let error = response.error { return finish(errorLabel(error)) }
                    self.granted(worker: worker)
                    if self.measuring { self.unlocksSent.append(monotonicNanoseconds()) }
                    connection.unlock(UnlockRequest(name: self.name, key: response.key)) { result in
                        switch result {
                        case .failure(let status): finish(errorLabel(status))
                        case .success(let response):
                            self.unlockAnswered()
                            finish(response.error.map(errorLabel))
                        }
                    }
                }
            }
        }
    }

    /// Grants and unlocks arrive on different connections, so a grant can be
    /// read before the unlock that caused it; such a hand-off counts as 0.
    private func granted(worker: Int) {
        guard measuring else { return }
        grants[worker] += 1
        if !unlocksSent.isEmpty {
            unlockSentToGrant.record(nanoseconds: monotonicNanoseconds() - unlocksSent.removeFirst())
        }
        if unlocksAwaitingGrant.isEmpty {
            grantsAwaitingUnlock += 1
        } else {
            handOff.record(nanoseconds: monotonicNanoseconds() - unlocksAwaitingGrant.removeFirst())
        }
    }

    private func unlockAnswered() {
        guard measuring else { return }
        if grantsAwaitingUnlock > 0 {
            grantsAwaitingUnlock -= 1
            handOff.record(nanoseconds: 0)
        } else {
            unlocksAwaitingGrant.append(monotonicNanoseconds())
        }
    }

    var fairness: [String: Any] {
        let mean = Double(grants.reduce(0, +)) / Double(max(grants.count, 1))
        let spread = mean > 0 ? grants.map { abs(Double($0) - mean) }.max()! / mean * 100 : 0
        return [
            "clients": grants.count,
            "min": grants.min() ?? 0,
            "max": grants.max() ?? 0,
            "mean": mean,
            "spread_percent": spread,
        ]
    }
}
