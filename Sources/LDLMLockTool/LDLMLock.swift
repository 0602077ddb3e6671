import ArgumentParser

/// The root command: the connection flags every subcommand shares.
struct LDLMLock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldlm-lock",
        abstract: "Take, hold and inspect locks of an LDLM server.",
        discussion: """
            Lock commands (lock, trylock, unlock) go to --address (default localhost:3144) with \
            --password. Admin commands (list, sessions, force-unlock, end-session) go to --socket, \
            the server's --ipc_socket_file, without a password, or else to the first --address \
            with --admin_password or a client certificate the server lists in --admin_identities. \
            Errors are one line on stderr; exit status 1 for a failure, 2 for a usage error.
            """,
        subcommands: [
            LockCommand.self, TryLockCommand.self, UnlockCommand.self,
            ListCommand.self, SessionsCommand.self, ForceUnlockCommand.self, EndSessionCommand.self,
        ]
    )

    @OptionGroup var server: ServerOptions

    func run() async throws {
        throw UsageError(message: "no command given (see ldlm-lock --help)")
    }
}
