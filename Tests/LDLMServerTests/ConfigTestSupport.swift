import Foundation
import XCTest

@testable import LDLMServer

/// A read failure with a fixed text, so messages that quote it are exact.
struct MissingFile: LocalizedError {
    var errorDescription: String? { "no such file" }
}

/// Resolves with `files` standing in for the file system.
func resolveRequest(
    _ arguments: [String],
    environment: [String: String] = [:],
    files: [String: String] = [:]
) throws -> ConfigRequest {
    try ServerConfig.resolve(arguments: arguments, environment: environment) { path in
        guard let text = files[path] else { throw MissingFile() }
        return text
    }
}

/// The defaults with `change` applied: what a resolution should give.
func configWith(_ change: (inout ServerConfig) -> Void = { _ in }) -> ServerConfig {
    var config = ServerConfig()
    change(&config)
    return config
}

func XCTAssertConfig(
    _ arguments: [String],
    environment: [String: String] = [:],
    files: [String: String] = [:],
    is expected: ServerConfig,
    file: StaticString = #filePath,
    line: UInt = #line
) {
    do {
        let request = try resolveRequest(arguments, environment: environment, files: files)
        XCTAssertEqual(request, .run(expected), "\(arguments) \(environment)", file: file, line: line)
    } catch {
        XCTFail("\(arguments) \(environment) failed: \(error)", file: file, line: line)
    }
}

func XCTAssertConfigError(
    _ arguments: [String],
    environment: [String: String] = [:],
    files: [String: String] = [:],
    is expected: String,
    file: StaticString = #filePath,
    line: UInt = #line
) {
    do {
        let request = try resolveRequest(arguments, environment: environment, files: files)
        XCTFail("\(arguments) \(environment) was accepted: \(request)", file: file, line: line)
    } catch let error as ConfigError {
        XCTAssertEqual(error.message, expected, "\(arguments) \(environment)", file: file, line: line)
    } catch {
        XCTFail("\(arguments) \(environment) threw \(error), not a ConfigError", file: file, line: line)
    }
}
