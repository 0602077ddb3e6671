import LDLMClient
import LDLMProtocol
import NIOCore

/// Takes many locks over one connection with up to `window` TryLocks in
/// flight. Succeeds with the number acquired; names already held count as failures.
func acquireAll(
    _ names: [String],
    on connection: LDLMClientConnection,
    window: Int
) -> EventLoopFuture<(acquired: Int, failures: [String: Int])> {
    let promise = connection.eventLoop.makePromise(of: (acquired: Int, failures: [String: Int]).self)
    connection.eventLoop.execute {
        var next = 0
        var outstanding = 0
        var acquired = 0
        var failures: [String: Int] = [:]
        func issue() {
            while outstanding < max(window, 1), next < names.count {
                let name = names[next]
                next += 1
                outstanding += 1
                connection.tryLock(TryLockRequest(name: name)) { result in
                    outstanding -= 1
                    switch result {
                    case .failure(let status): failures[errorLabel(status), default: 0] += 1
                    case .success(let response):
                        if let error = response.error {
                            failures[errorLabel(error), default: 0] += 1
                        } else if response.locked {
                            acquired += 1
                        } else {
                            failures["not-locked", default: 0] += 1
                        }
                    }
                    if next == names.count, outstanding == 0 {
                        promise.succeed((acquired, failures))
                    } else {
                        issue()
                    }
                }
            }
        }
        if names.isEmpty {
            promise.succeed((0, [:]))
        } else {
            issue()
        }
    }
    return promise.futureResult
}
