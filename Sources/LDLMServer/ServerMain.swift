import Foundation
import Logging
import NIOCore
import NIOPosix

/// `ldlm-server`'s whole command: configuration, logging, signals, serving.
public enum ServerMain {
    public static func run(arguments: [String], environment: [String: String]) -> Int32 {
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
            FileHandle.standardError.write(Data("ldlm-server: \(error.message)\n".utf8))
            return 2
        }

        // Block the handled signals before any thread exists, so every thread
        // inherits the mask and only the waiter thread below receives them.
        var handledSignals = sigset_t()
        sigemptyset(&handledSignals)
        sigaddset(&handledSignals, SIGINT)
        sigaddset(&handledSignals, SIGTERM)
        sigaddset(&handledSignals, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &handledSignals, nil)

        let level = config.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "ldlm-server")

        let server: LockServer
        do {
            server = try LockServer(config: config, logger: logger)
        } catch {
            FileHandle.standardError.write(Data("ldlm-server: \(error.message)\n".utf8))
            return 2
        }
        do {
            try server.start()
        } catch {
            FileHandle.standardError.write(Data("ldlm-server: cannot listen on \(config.listenAddress): \(error)\n".utf8))
            server.stop()
            return 2
        }

        let awaitedSignals = handledSignals
        let signalWaiter = Thread {
            var signals = awaitedSignals
            var received: Int32 = 0
            while sigwait(&signals, &received) == 0, received == SIGHUP {
                server.reloadTLS()
            }
            logger.info("received signal, shutting down", metadata: ["signal": "\(received)"])
            server.stop()
        }
        signalWaiter.start()

        try? server.waitUntilClosed()
        return 0
    }
}
