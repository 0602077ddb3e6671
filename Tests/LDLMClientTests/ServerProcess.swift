import Foundation
import XCTest

/// A real `ldlm-server` child process on 127.0.0.1, from `LDLM_SERVER_BIN` or
/// the package's `.build/debug/ldlm-server`.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    var address: String { "127.0.0.1:\(port)" }

    /// Starts the server on `port` (0 for a free one) and waits until it listens.
    init(port: Int = 0, arguments: [String] = []) throws {
        process.executableURL = Self.binary
        process.arguments = ["--listen_address", "127.0.0.1:\(port)"] + arguments
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        self.port = try Self.listeningPort(stderr.fileHandleForReading, process: process)
        // Keep draining its log so the server never blocks on a full pipe.
        stderr.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
    }

    deinit {
        stop()
    }

    static var binary: URL {
        if let path = ProcessInfo.processInfo.environment["LDLM_SERVER_BIN"] {
            return URL(fileURLWithPath: path)
        }
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return packageRoot.appendingPathComponent(".build/debug/ldlm-server")
    }

    /// Reads the log until "ldlm-server listening ... address=HOST:PORT".
    private static func listeningPort(_ log: FileHandle, process: Process) throws -> Int {
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let chunk = log.availableData
            if chunk.isEmpty {
                throw ServerStartError(log: text, status: process.isRunning ? nil : process.terminationStatus)
            }
            text += String(decoding: chunk, as: UTF8.self)
            for line in text.split(separator: "\n") where line.contains("ldlm-server listening") {
                if let range = line.range(of: #"address=[0-9.]+:[0-9]+"#, options: .regularExpression),
                   let port = Int(line[range].split(separator: ":").last!) {
                    return port
                }
            }
        }
        throw ServerStartError(log: text, status: nil)
    }

    /// SIGKILL: no GOAWAY, the kernel just drops the connections.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGSTOP: connections stay open but nothing answers, as with a frozen
    /// server or a cut network path.
    func freeze() {
        kill(process.processIdentifier, SIGSTOP)
    }

    func thaw() {
        kill(process.processIdentifier, SIGCONT)
    }
}

struct ServerStartError: Error, CustomStringConvertible {
    let log: String
    let status: Int32?
    var description: String { "ldlm-server did not start (exit status \(status.map(String.init) ?? "none")): \(log)" }
}
