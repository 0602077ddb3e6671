import ArgumentParser
import Dispatch
import Foundation
import LDLMClient
import GoDuration

@main
struct LDLMElect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ldlm-elect",
        abstract: "Runs a command while this process leads, elected with an LDLM lock.",
        discussion: """
            Campaigns for the lock NAME; once it holds it, runs COMMAND with LDLM_FENCING_TOKEN set \
            to the term's fencing token. When leadership is lost, the command gets SIGTERM and, once \
            it has exited, the campaign starts over. When the command exits by itself, ldlm-elect \
            resigns and exits with its status. SIGTERM or SIGINT stops the command, resigns and exits.
            """
    )

    @Option(help: "host:port of the server.") var address = "127.0.0.1:3144"
    @Option(help: "Password sent as authorization metadata.") var password: String?
    @Option(help: "The lock name every candidate campaigns for.") var name: String
    @Option(help: "The lock's lease, in Go syntax (10s, 1m). (default: 10s)", transform: parseLease) var lease: Duration = .seconds(10)
    @Argument(parsing: .postTerminator, help: "The command to run while leader, after --.") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command to run after --") }
    }

    func run() async throws {
        var configuration = LDLMClient.Configuration(address: address)
        configuration.password = password
        let client = try LDLMClient(configuration: configuration)
        let election = LeaderElection(client: client, name: name, lease: lease)
        let command = command
        let campaign = Task {
            try await election.withLeadership { token in try await ChildCommand.run(command, fencingToken: token) }
        }
        let log = Task { for await role in election.roles { Self.log(role) } }
        let signalSources = Self.cancelOnStopSignals(campaign)
        let outcome = await campaign.result
        withExtendedLifetime(signalSources) {}
        await log.value
        await client.close()
        switch outcome {
        case .success(let status): throw ExitCode(status)
        case .failure(is CancellationError): return
        case .failure(let error): throw error
        }
    }

    private static func log(_ role: LeaderElection.Role) {
        switch role {
        case .leader(let token): FileHandle.standardError.write(Data("ldlm-elect: leader, fencing token \(token)\n".utf8))
        case .follower: FileHandle.standardError.write(Data("ldlm-elect: leadership lost, stopping the command\n".utf8))
        }
    }

    /// SIGTERM and SIGINT cancel `task` instead of killing the process, so
    /// that the command is stopped and the lock released first.
    private static func cancelOnStopSignals(_ task: Task<Int32, Error>) -> [DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
    }
}

private func parseLease(_ text: String) throws -> Duration {
    guard let nanoseconds = parseGoDuration(text), nanoseconds >= 1_000_000_000, nanoseconds <= UInt64(Int64.max) else {
        throw ValidationError("--lease must be a duration in Go syntax of at least 1s, such as 10s")
    }
    return .nanoseconds(Int64(nanoseconds))
}
