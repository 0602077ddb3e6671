import Foundation
import LDLMClient

/// What `ldlm-lock lock` does: waits for the lock, runs the command while
/// holding it, and releases it once the command has exited. Signals, a lost
/// lock and the command's exit all arrive as events on one stream, handled
/// one at a time, so they never race one another.
struct LockedRun {
    /// The status when the lock was lost while the command ran: EX_TEMPFAIL,
    /// the run may be retried.
    static let lostLockStatus: Int32 = 75
    /// A command that cannot be started, as shells report it.
    static let cannotRunStatus: Int32 = 127
    static let forwardedSignals = [SIGTERM, SIGINT]

    let client: LDLMClient
    let name: String
    let size: Int32
    let wait: Duration?
    let lease: Duration?
    let command: [String]

    private enum Event {
        case acquired(LockHandle)
        case failed(Error)
        case signal(Int32)
        case lost(LostReason)
        case exited
    }

    /// Returns ldlm-lock's exit status.
    func run() async throws -> Int32 {
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let trap = SignalTrap(Self.forwardedSignals) { sink.yield(.signal($0)) }
        // Released only at the end: its deinit stops catching the signals.
        defer { withExtendedLifetime(trap) {} }
        var iterator = events.makeAsyncIterator()
        let acquiring = Task { [client, name, size, wait, lease] in
            do {
                sink.yield(.acquired(try await client.lock(name, size: size, waitTimeout: wait, lease: lease)))
            } catch {
                sink.yield(.failed(error))
            }
        }
        while let event = await iterator.next() {
            switch event {
            case .acquired(let handle):
                return try await hold(handle, events: &iterator, sink: sink)
            case .failed(let error):
                throw error
            case .signal(let signal):
                // Stops the wait; the server withdraws the request.
                acquiring.cancel()
                return 128 + signal
            case .lost, .exited:
                continue
            }
        }
        return 1
    }

    private func hold(
        _ handle: LockHandle,
        events: inout AsyncStream<Event>.Iterator,
        sink: AsyncStream<Event>.Continuation
    ) async throws -> Int32 {
        let child: ChildProcess
        do {
            child = try ChildProcess(command, resettingSignals: Self.forwardedSignals)
        } catch {
            try? await client.unlock(handle)
            printError("\(error)")
            return Self.cannotRunStatus
        }
        child.whenExited { sink.yield(.exited) }
        let watching = Task {
            if let reason = try? await handle.waitUntilLost() { sink.yield(.lost(reason)) }
        }
        var lost: LostReason?
        loop: while let event = await events.next() {
            switch event {
            case .signal(let signal):
                child.send(signal)
            case .lost(let reason) where lost == nil:
                lost = reason
                child.send(SIGTERM)
                printError("lost lock \(name) (\(reason)); sent SIGTERM to the command")
            case .exited:
                break loop
            case .acquired, .failed, .lost:
                continue
            }
        }
        watching.cancel()
        return await finish(child.reap(), handle: handle, lost: lost != nil)
    }

    private func finish(_ status: ChildProcess.Status, handle: LockHandle, lost: Bool) async -> Int32 {
        if lost { return Self.lostLockStatus }
        do {
            try await client.unlock(handle)
        } catch {
            // The hold may have ended just before: the command ran, but maybe not alone.
            printError("cannot release lock \(name): \(error)")
            return status.exitStatus == 0 ? 1 : status.exitStatus
        }
        return status.exitStatus
    }
}
