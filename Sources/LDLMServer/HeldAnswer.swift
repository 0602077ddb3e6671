import LDLMGRPC
import LDLMProtocol

/// With a state file, an answer that tells of a change (a grant, an unlock, a
/// renewal, a lock released by an administrator) goes out only once that
/// change is on disk.
extension LockManager {
    /// Holds a reply until the changes made so far are on disk: only a change
    /// leaves them unsynced, so a failed call or a TryLock that found the
    /// lock taken is answered at once.
    func durable(_ outcome: RPCOutcome, _ makeResponder: () -> RPCResponder) -> RPCOutcome {
        guard let journal, journal.hasUnsyncedChanges, case .reply(let message, let undo, let ldlmError) = outcome else {
            return outcome
        }
        let responder = makeResponder()
        let held = HeldAnswer()
        held.hold(message, undo: undo, ldlmError: ldlmError)
        journal.afterSync { held.deliver(to: responder) }
        return .deferred(cancel: { held.withdraw() })
    }
}

/// An answer waiting for its change to reach the disk. A caller that gives up
/// meanwhile (deadline, reset, disconnect) withdraws it, and a grant is undone
/// at once rather than after the sync, so the lock is not held for a caller
/// that already left.
final class HeldAnswer {
    private var answer: (message: [UInt8], undo: (() -> Void)?, ldlmError: ErrorCode?)?

    func hold(_ message: [UInt8], undo: (() -> Void)?, ldlmError: ErrorCode? = nil) {
        answer = (message, undo, ldlmError)
    }

    func deliver(to responder: RPCResponder) {
        guard let answer else { return }
        self.answer = nil
        responder.reply(answer.message, onUndelivered: answer.undo, ldlmError: answer.ldlmError)
    }

    /// False once delivered, or if nothing was held yet.
    func withdraw() -> Bool {
        guard let answer else { return false }
        self.answer = nil
        answer.undo?()
        return true
    }
}
