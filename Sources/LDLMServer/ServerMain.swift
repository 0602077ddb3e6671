import Foundation
import LDLMCore
import LDLMStateLog
import Logging
import ServiceLifecycle

/// `ldlm-server`'s whole command: configuration, logging, and the server run
/// as a service until SIGTERM or SIGINT has drained it.
public enum ServerMain {
    public static func run(arguments: [String], environment: [String: String]) async -> Int32 {
        let config: ServerConfig
        do {
            switch try ServerConfig.resolve(arguments: arguments, environment: environment) {
            case .showHelp(let text), .showVersion(let text), .showTemplate(let text):
                print(text)
                return 0
            case .run(let resolved):
                config = resolved
            }
        } catch {
            return fail(error.message)
        }

        let level = config.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ldlm-server")
        do {
            let server = try LockServer(config: config, logger: logger)
            let group = ServiceGroup(configuration: .init(
                services: [server],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            ))
            try await group.run()
            return 0
        } catch let error as ConfigError {
            return fail(error.message)
        } catch let error as ListenError {
            return fail(error.description)
        } catch let error as StateFileError {
            return fail(error.message, status: 1)
        } catch let error as LockFailure {
            return fail("state file \(config.stateFile ?? ""): \(error)", status: 1)
        } catch {
            return fail("\(error)")
        }
    }

    /// Status 2 for a configuration that cannot work, 1 for a state file that cannot be used.
    private static func fail(_ message: String, status: Int32 = 2) -> Int32 {
        FileHandle.standardError.write(Data("ldlm-server: \(message)\n".utf8))
        return status
    }
}
