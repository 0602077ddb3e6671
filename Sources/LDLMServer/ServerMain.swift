import Foundation
import Logging
import ServiceLifecycle

/// `ldlm-server`'s whole command: configuration, logging, and the server run
/// as a service until SIGTERM or SIGINT has drained it.
public enum ServerMain {
    public static func run(arguments: [String], environment: [String: String]) async -> Int32 {
        let config: ServerConfig
        do {
            switch try ServerConfig.resolve(arguments: arguments, environment: environment) {
            case .showHelp(let text), .showVersion(let text):
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
        } catch {
            return fail("\(error)")
        }
    }

    private static func fail(_ message: String) -> Int32 {
        FileHandle.standardError.write(Data("ldlm-server: \(message)\n".utf8))
        return 2
    }
}
