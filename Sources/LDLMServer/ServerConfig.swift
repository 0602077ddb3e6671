import Foundation
import Logging

/// Everything `ldlm-server` can be told, resolved from flags, `LDLM_*`
/// environment variables and a config file, in that order of precedence.
public struct ServerConfig: Equatable, Sendable {
    public var listenAddress = "localhost:3144"
    /// The shared secret every RPC must present as `authorization` metadata.
    public var password: String?
    /// Time between keepalive PINGs on each connection; zero turns keepalive off.
    public var keepaliveInterval: Duration = .seconds(60)
    /// A PING not acknowledged within this ends the connection and its session.
    public var keepaliveTimeout: Duration = .seconds(10)
    public var clearOnDisconnect = true
    public var logLevel: Logger.Level = .info
    public var maxNameBytes = 4096
    public var maxMessageBytes = 4 * 1024 * 1024
    /// PEM certificate chain and key; both set turns TLS on.
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// PEM CA bundle that client certificates must chain to; set means mTLS.
    public var clientCAPath: String?
    /// Longest a new connection may take to complete its TLS handshake.
    public var handshakeTimeout: Duration = .seconds(10)
    /// How long a drain (SIGTERM, SIGINT) may take before connections are closed.
    public var shutdownTimeout: Duration = .seconds(10)
    /// A connection with no open streams, no held locks and no waiting calls for
    /// this long is closed with a GOAWAY; zero keeps idle connections open.
    public var idleTimeout: Duration = .zero

    public var usesTLS: Bool { tlsCertificatePath != nil }

    public init() {}
}

/// A flag, variable or config entry that cannot be used; the server exits with
/// status 2 and prints `message` on one line.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }

    init(_ message: String) {
        self.message = message
    }
}

/// What the command line asked for.
public enum ConfigRequest: Equatable {
    case run(ServerConfig)
    case showHelp(String)
}

extension ServerConfig {
    private enum Kind {
        case string, duration, bool, positiveInteger
    }

    private struct Option {
        let name: String
        let kind: Kind
        let help: String
    }

    private static let options: [Option] = [
        Option(name: "listen_address", kind: .string, help: "host:port to listen on (default localhost:3144)"),
        Option(name: "password", kind: .string, help: "password every client must send as `authorization` metadata"),
        Option(name: "password_file", kind: .string, help: "file holding the password (read once at start, trailing newline stripped)"),
        Option(name: "keepalive_interval", kind: .duration, help: "time between keepalive PINGs; 0 disables them (default 1m)"),
        Option(name: "keepalive_timeout", kind: .duration, help: "time to wait for a PING ACK before closing the connection (default 10s)"),
        Option(name: "no_clear_on_disconnect", kind: .bool, help: "keep a client's locks when its connection ends"),
        Option(name: "log_level", kind: .string, help: "debug, info, warn or error (default info)"),
        Option(name: "config_file", kind: .string, help: "YAML or JSON file with any of these options as keys"),
        Option(name: "max_name_bytes", kind: .positiveInteger, help: "longest lock name accepted, in bytes (default 4096)"),
        Option(name: "max_message_bytes", kind: .positiveInteger, help: "largest request message accepted, in bytes (default 4194304)"),
        Option(name: "tls_cert", kind: .string, help: "PEM certificate chain; with --tls_key the listener speaks TLS (1.2+, ALPN h2)"),
        Option(name: "tls_key", kind: .string, help: "PEM private key for --tls_cert"),
        Option(name: "client_ca", kind: .string, help: "PEM CA bundle; clients must present a certificate that chains to it"),
        Option(name: "client_cert_verify", kind: .bool, help: "require and verify client certificates (needs --client_ca)"),
        Option(name: "handshake_timeout", kind: .duration, help: "time a new connection gets to finish its TLS handshake (default 10s)"),
        // Go ldlm-server garbage-collects idle locks on a timer; here an idle lock
        // is freed at once, so these are accepted for drop-in command lines only.
        Option(name: "lock_gc_interval", kind: .duration, help: "accepted for compatibility; idle locks are freed immediately"),
        Option(name: "lock_gc_min_idle", kind: .duration, help: "accepted for compatibility; idle locks are freed immediately"),
    ]

    public static var usage: String {
        var text = "usage: ldlm-server [flags]\n\nEvery flag can also be set as LDLM_<FLAG> in the environment or as a key in --config_file.\nPrecedence: flag, then environment, then config file.\n\n"
        for option in options {
            let placeholder: String
            switch option.kind {
            case .string: placeholder = " string"
            case .duration: placeholder = " duration"
            case .bool: placeholder = ""
            case .positiveInteger: placeholder = " int"
            }
            text += "  --\(option.name)\(placeholder)\n        \(option.help)\n"
        }
        return text
    }

    /// Resolves the configuration. `readFile` is injectable for tests.
    public static func resolve(
        arguments: [String],
        environment: [String: String],
        readFile: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
    ) throws(ConfigError) -> ConfigRequest {
        var fromFlags: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" || argument == "--help" || argument == "-help" {
                return .showHelp(usage)
            }
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
                throw ConfigError("unexpected argument \"\(argument)\"")
            }
            let body = argument.drop { $0 == "-" }
            let name: String
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                value = String(body[body.index(after: equals)...])
            } else {
                name = String(body)
            }
            guard let option = options.first(where: { $0.name == name }) else {
                throw ConfigError("unknown flag --\(name) (see --help)")
            }
            if value == nil {
                if option.kind == .bool {
                    value = "true"
                } else {
                    guard index < arguments.count else { throw ConfigError("flag --\(name) needs a value") }
                    value = arguments[index]
                    index += 1
                }
            }
            fromFlags[name] = value
        }

        var fromEnvironment: [String: String] = [:]
        for option in options {
            if let value = environment["LDLM_" + option.name.uppercased()] {
                fromEnvironment[option.name] = value
            }
        }

        var fromFile: [String: String] = [:]
        if let path = fromFlags["config_file"] ?? fromEnvironment["config_file"] {
            let text: String
            do {
                text = try readFile(path)
            } catch {
                throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
            }
            fromFile = try parseConfigFile(text, path: path)
        }

        // --password and --password_file are one setting: the one from the
        // stronger source wins, and giving both in one place is a mistake.
        let sources = [fromFlags, fromEnvironment, fromFile]
        if let strongest = sources.first(where: { $0["password"] != nil || $0["password_file"] != nil }) {
            if strongest["password"] != nil, strongest["password_file"] != nil {
                throw ConfigError("give either a password or a password file, not both")
            }
            let loser = strongest["password"] != nil ? "password_file" : "password"
            fromFlags.removeValue(forKey: loser)
            fromEnvironment.removeValue(forKey: loser)
            fromFile.removeValue(forKey: loser)
        }

        var merged = fromFile
        merged.merge(fromEnvironment) { $1 }
        merged.merge(fromFlags) { $1 }

        var config = ServerConfig()
        for option in options {
            guard let value = merged[option.name] else { continue }
            try apply(option, value: value, to: &config, readFile: readFile)
        }
        if config.keepaliveInterval > .zero, config.keepaliveTimeout == .zero {
            throw ConfigError("--keepalive_timeout must be greater than 0 when keepalive is on")
        }
        if (config.tlsCertificatePath == nil) != (config.tlsKeyPath == nil) {
            throw ConfigError("--tls_cert and --tls_key must be given together")
        }
        let wantsClientVerification = try merged["client_cert_verify"].map { value throws(ConfigError) in
            try bool(value, option: options.first { $0.name == "client_cert_verify" }!)
        } ?? false
        if wantsClientVerification, config.clientCAPath == nil {
            throw ConfigError("--client_cert_verify needs --client_ca, the CA that client certificates must chain to")
        }
        if config.clientCAPath != nil, !config.usesTLS {
            throw ConfigError("--client_ca needs --tls_cert and --tls_key")
        }
        if config.handshakeTimeout == .zero {
            throw ConfigError("--handshake_timeout must be greater than 0")
        }
        return .run(config)
    }

    private static func apply(
        _ option: Option,
        value: String,
        to config: inout ServerConfig,
        readFile: (String) throws -> String
    ) throws(ConfigError) {
        switch option.name {
        case "listen_address":
            _ = try ListenAddress(parsing: value)
            config.listenAddress = value
        case "password":
            config.password = value.isEmpty ? nil : value
        case "password_file":
            let contents: String
            do {
                contents = try readFile(value)
            } catch {
                throw ConfigError("cannot read password file \(value): \(error.localizedDescription)")
            }
            var password = Substring(contents)
            while password.last == "\n" || password.last == "\r" { password.removeLast() }
            guard !password.isEmpty else { throw ConfigError("password file \(value) is empty") }
            config.password = String(password)
        case "keepalive_interval":
            config.keepaliveInterval = .nanoseconds(try duration(value, option: option))
        case "keepalive_timeout":
            config.keepaliveTimeout = .nanoseconds(try duration(value, option: option))
        case "no_clear_on_disconnect":
            config.clearOnDisconnect = !(try bool(value, option: option))
        case "log_level":
            switch value.lowercased() {
            case "debug": config.logLevel = .debug
            case "info": config.logLevel = .info
            case "warn", "warning": config.logLevel = .warning
            case "error": config.logLevel = .error
            default: throw ConfigError("invalid value \"\(value)\" for --log_level: use debug, info, warn or error")
            }
        case "max_name_bytes":
            config.maxNameBytes = try positiveInteger(value, option: option)
        case "max_message_bytes":
            config.maxMessageBytes = try positiveInteger(value, option: option)
        case "lock_gc_interval", "lock_gc_min_idle":
            _ = try duration(value, option: option)
        case "tls_cert":
            config.tlsCertificatePath = value
        case "tls_key":
            config.tlsKeyPath = value
        case "client_ca":
            config.clientCAPath = value
        case "client_cert_verify":
            _ = try bool(value, option: option)
        case "handshake_timeout":
            config.handshakeTimeout = .nanoseconds(try duration(value, option: option))
        default:
            break
        }
    }

    private static func duration(_ value: String, option: Option) throws(ConfigError) -> UInt64 {
        guard let nanoseconds = parseGoDuration(value) else {
            throw ConfigError("invalid duration \"\(value)\" for --\(option.name): use Go syntax such as 500ms, 10s or 1m30s")
        }
        return nanoseconds
    }

    private static func bool(_ value: String, option: Option) throws(ConfigError) -> Bool {
        switch value.lowercased() {
        case "1", "t", "true", "yes", "on": return true
        case "0", "f", "false", "no", "off": return false
        default: throw ConfigError("invalid boolean \"\(value)\" for --\(option.name)")
        }
    }

    private static func positiveInteger(_ value: String, option: Option) throws(ConfigError) -> Int {
        guard let number = Int(value), number > 0 else {
            throw ConfigError("invalid value \"\(value)\" for --\(option.name): must be a positive integer")
        }
        return number
    }

    /// Reads a flat JSON object or a flat YAML mapping of option names to values.
    static func parseConfigFile(_ text: String, path: String) throws(ConfigError) -> [String: String] {
        let trimmed = text.drop { $0.isWhitespace }
        var entries: [String: String] = [:]
        if trimmed.hasPrefix("{") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw ConfigError("config file \(path) is not a valid JSON object")
            }
            for (key, value) in object {
                switch value {
                case let string as String: entries[key] = string
                case let number as NSNumber: entries[key] = number.stringValue
                default: throw ConfigError("config file \(path): value of \"\(key)\" must be a string, number or boolean")
                }
            }
        } else {
            for (lineNumber, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = stripYAMLComment(rawLine).trimmingCharacters(in: .whitespaces)
                if line.isEmpty || line == "---" { continue }
                guard let colon = line.firstIndex(of: ":") else {
                    throw ConfigError("config file \(path) line \(lineNumber + 1): expected \"key: value\"")
                }
                let key = line[..<colon].trimmingCharacters(in: .whitespaces)
                var value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let first = value.first, first == value.last, first == "\"" || first == "'" {
                    value = String(value.dropFirst().dropLast())
                }
                entries[unquote(key)] = value
            }
        }
        for key in entries.keys where !options.contains(where: { $0.name == key }) {
            throw ConfigError("config file \(path): unknown option \"\(key)\"")
        }
        return entries
    }

    private static func stripYAMLComment(_ line: Substring) -> Substring {
        var quote: Character?
        var previous: Character = " "
        for index in line.indices {
            let character = line[index]
            if let open = quote {
                if character == open { quote = nil }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "#", previous.isWhitespace {
                return line[..<index]
            }
            previous = character
        }
        return line
    }

    private static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, first == text.last, first == "\"" || first == "'" {
            return String(text.dropFirst().dropLast())
        }
        return text
    }
}
