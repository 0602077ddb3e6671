import ArgumentParser
import Foundation
import LDLMClient

struct LockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock",
        abstract: "Run a command while holding a lock.",
        discussion: """
            Waits for the lock, runs COMMAND while holding it (the lease is renewed in the \
            background) and releases it when COMMAND exits; exits with COMMAND's status (128 + N \
            when signal N ended it). If the lock is lost while COMMAND runs, COMMAND gets SIGTERM \
            and ldlm-lock exits with status 75. SIGTERM and SIGINT are passed on to COMMAND; the \
            lock is released once it exits. A COMMAND that cannot be started gives status 127.
            """
    )

    @ParentCommand var root: LDLMLock
    @Argument(help: "The lock's name.") var name: String
    @Option(help: "How many may hold the lock at once.") var size: Int32 = 1
    @Option(help: "Give up after waiting this long (Go syntax: 10s, 1m30s). Default: wait for ever.")
    var wait: DurationArgument?
    @Option(help: "The lease, renewed while COMMAND runs (default 30s).") var lease: DurationArgument?
    @Argument(parsing: .postTerminator, help: "-- COMMAND [ARGS...]") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("missing -- COMMAND [ARGS...]") }
        guard size >= 1 else { throw ValidationError("--size must be at least 1") }
    }

    func run() async throws {
        let client = try LDLMClient(configuration: root.server.clientConfiguration())
        let run = LockedRun(client: client, name: name, size: size, wait: wait?.duration, lease: lease?.duration, command: command)
        let status = try await run.run()
        await client.close()
        throw ExitCode(status)
    }
}

struct TryLockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trylock",
        abstract: "Take a lock if it is free, and print its key and fencing token.",
        discussion: """
            Exits 1 when the lock is held. The lock belongs to ldlm-lock's connection, so the \
            server releases it as soon as ldlm-lock exits, unless it runs with \
            --no_clear_on_disconnect: then the lock stays until `ldlm-lock unlock NAME KEY` or \
            until its --lease runs out.
            """
    )

    @ParentCommand var root: LDLMLock
    @Argument(help: "The lock's name.") var name: String
    @Option(help: "How many may hold the lock at once.") var size: Int32 = 1
    @Option(help: "The lease (Go syntax: 10s, 1m30s; default 30s).") var lease: DurationArgument?

    func run() async throws {
        let client = try LDLMClient(configuration: root.server.clientConfiguration())
        let handle = try await client.tryLock(name, size: size, lease: lease?.duration)
        let output = Output(json: root.server.json)
        if let handle {
            output.print(
                json: ["name": name, "locked": true, "key": handle.key, "fencing_token": handle.fencingToken.map { $0 as Any } ?? NSNull()],
                table: [["NAME", "KEY", "FENCING TOKEN"], [name, handle.key, handle.fencingToken.map(String.init) ?? "-"]]
            )
        } else {
            output.print(json: ["name": name, "locked": false], table: nil)
            printError("\(name) is held")
        }
        await client.close()
        if handle == nil { throw ExitCode(1) }
    }
}

struct UnlockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unlock",
        abstract: "Release a lock by its key (from trylock, on a server with --no_clear_on_disconnect)."
    )

    @ParentCommand var root: LDLMLock
    @Argument(help: "The lock's name.") var name: String
    @Argument(help: "The key its holder got.") var key: String

    func run() async throws {
        let client = try LDLMClient(configuration: root.server.clientConfiguration())
        try await client.unlock(name: name, key: key)
        Output(json: root.server.json).print(json: ["name": name, "unlocked": true], table: nil)
        await client.close()
    }
}
