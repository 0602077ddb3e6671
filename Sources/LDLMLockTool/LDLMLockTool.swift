import ArgumentParser
import Foundation
import LDLMClient

/// Runs `ldlm-lock` with its arguments and returns the exit status: 0, the
/// command's own for `lock`, 1 for a failure, 2 for a usage error.
public enum LDLMLockTool {
    public static func run(_ arguments: [String]) async -> Int32 {
        do {
            var command = try LDLMLock.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                // ArgumentParser's own `help` subcommand.
                try command.run()
            }
            return 0
        } catch {
            return report(error)
        }
    }

    private static func report(_ error: Error) -> Int32 {
        switch error {
        case let exit as ExitCode:
            return exit.rawValue
        case let error as UsageError:
            printError(error.message)
            return 2
        case let error as LDLMClientError:
            printError("\(error)")
            return 1
        default:
            return reportArgumentParserError(error)
        }
    }

    /// Help goes to stdout with status 0; a parse or validation error is a
    /// usage error, status 2 (ArgumentParser's own would be 64).
    private static func reportArgumentParserError(_ error: Error) -> Int32 {
        let code = LDLMLock.exitCode(for: error)
        if code == .success {
            print(LDLMLock.fullMessage(for: error))
            return 0
        }
        let message = LDLMLock.message(for: error).split(whereSeparator: \.isNewline).joined(separator: " ")
        guard code == .validationFailure else {
            printError(message)
            return code.rawValue
        }
        printError("\(message) (see ldlm-lock --help)")
        return 2
    }
}

/// A bad flag value found after parsing (an unreadable password file): exit status 2.
struct UsageError: Error {
    let message: String
}

/// One line on stderr, prefixed with the tool's name.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("ldlm-lock: \(message)\n".utf8))
}
