import Foundation

/// The command `ldlm-lock lock` runs, with ldlm-lock's stdin, stdout, stderr,
/// environment and process group.
final class ChildProcess: Sendable {
    enum Status: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)

        /// As a shell reports it: the exit code, or 128 + the signal number.
        var exitStatus: Int32 {
            switch self {
            case .exited(let code): return code
            case .signaled(let signal): return 128 + signal
            }
        }
    }

    let pid: pid_t

    /// Starts `command[0]` found on `PATH`. The signals ldlm-lock ignores in
    /// order to trap them get their default action back in the child, which
    /// would otherwise inherit them ignored and never die of SIGTERM.
    init(_ command: [String], resettingSignals signals: [Int32]) throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in signals { sigaddset(&defaults, signal) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let result = posix_spawnp(&pid, command[0], nil, &attributes, argv, environ)
        guard result == 0 else {
            throw SpawnError(command: command[0], reason: String(cString: strerror(result)))
        }
        self.pid = pid
    }

    func send(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Calls `exited` once the child has exited, from a thread of its own
    /// (waiting blocks). The child is left unreaped, so its pid cannot be
    /// reused and ``send(_:)`` cannot reach another process, until ``reap()``.
    func whenExited(_ exited: @escaping @Sendable () -> Void) {
        let pid = self.pid
        Thread.detachNewThread {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1, errno == EINTR {}
            exited()
        }
    }

    /// Collects the status of a child that has exited.
    func reap() -> Status {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import.
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signaled(signal)
    }
}

struct SpawnError: Error, CustomStringConvertible {
    let command: String
    let reason: String
    var description: String { "cannot run \(command): \(reason)" }
}
