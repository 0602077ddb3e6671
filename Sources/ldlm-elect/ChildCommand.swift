import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The command ldlm-elect runs while it leads.
final class ChildCommand: @unchecked Sendable {
    private let pid: pid_t
    private let lock = NSLock()
    /// Guarded by `lock`: once reaped, the pid may name another process.
    private var reaped = false

    /// Runs `arguments` (the first looked up in PATH) with LDLM_FENCING_TOKEN
    /// set, and returns its exit status, or 128 + the signal that ended it.
    /// Cancelling the task sends the command SIGTERM; this still returns only
    /// once the command has exited, so that two terms never overlap, and then
    /// throws `CancellationError`.
    static func run(_ arguments: [String], fencingToken: UInt64) async throws -> Int32 {
        var environment = ProcessInfo.processInfo.environment
        environment["LDLM_FENCING_TOKEN"] = String(fencingToken)
        try Task.checkCancellation()
        let child = try ChildCommand(arguments, environment: environment)
        // Runs at once when the task is already cancelled.
        let status = await withTaskCancellationHandler { await child.exitStatus() } onCancel: { child.terminate() }
        try Task.checkCancellation()
        return status
    }

    /// posix_spawn rather than Foundation's `Process`: a child started from a
    /// Swift concurrency thread inherits that thread's signal mask, which
    /// blocks SIGTERM, and the ignored SIGPIPE; both are reset here.
    private init(_ arguments: [String], environment: [String: String]) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var everySignal = sigset_t()
        sigfillset(&everySignal)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &everySignal)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, arguments[0], nil, &attributes, argv, envp)
        guard result == 0 else {
            throw SpawnError(description: "cannot run \(arguments[0]): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    private func terminate() {
        lock.withLock {
            if !reaped { _ = kill(pid, SIGTERM) }
        }
    }

    /// Waits on a thread of its own: waitpid blocks.
    private func exitStatus() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(self.pid, &status, 0) == -1, errno == EINTR {}
                self.lock.withLock { self.reaped = true }
                // WIFEXITED / WEXITSTATUS / WTERMSIG are C macros Swift cannot import.
                let signal = status & 0x7f
                continuation.resume(returning: signal == 0 ? (status >> 8) & 0xff : 128 + signal)
            }
        }
    }
}

struct SpawnError: Error, CustomStringConvertible {
    let description: String
}
