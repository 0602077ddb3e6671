import ArgumentParser
import Foundation

/// What the command line alone decides.
enum CommandLineRequest {
    case help(String)
    case version(String)
    case template(ConfigTemplate)
    /// The settings given as flags, as text: flags, environment and config
    /// file share one validation (`ConfigResolution.swift`).
    case settings([ConfigSetting: String])
}

/// `ldlm-server`'s flags for ArgumentParser. Every setting is read as text;
/// absent stays `nil`, so the environment and config file can fill it in.
struct ServerFlags: ParsableCommand {
    static let versionText = "ldlm-server (swift-ldlm) 0.3.0"

    static let configuration = CommandConfiguration(
        commandName: "ldlm-server",
        abstract: "A lock server for go-ldlm clients.",
        discussion: """
            Every flag can also be set as LDLM_<FLAG> in the environment (LDLM_LISTEN_ADDRESS, ...) \
            or as a key in --config_file. Precedence: flag, then environment, then config file. \
            Durations use Go syntax: 500ms, 10s, 1m30s. Flags take one or two dashes, and a value \
            after a space or after =; a boolean flag alone means true, or give =true or =false.
            """,
        // `-help` is listed for the help text; GoCommandLine passes it on as `--help`.
        helpNames: [.short, .long, .customLong("help", withSingleDash: true)]
    )

    @Option(.listenAddress) var listenAddress: String?
    @Option(.password) var password: String?
    @Option(.passwordFile) var passwordFile: String?
    @Option(.adminPassword) var adminPassword: String?
    @Option(.adminPasswordFile) var adminPasswordFile: String?
    @Option(.adminIdentities) var adminIdentities: String?
    @Option(.ipcSocketFile) var ipcSocketFile: String?
    @Option(.keepaliveInterval) var keepaliveInterval: String?
    @Option(.keepaliveTimeout) var keepaliveTimeout: String?
    @Option(.noClearOnDisconnect) var noClearOnDisconnect: String?
    @Option(.logLevel) var logLevel: String?
    @Option(.configFile) var configFile: String?
    @Option(.maxNameBytes) var maxNameBytes: String?
    @Option(.maxMessageBytes) var maxMessageBytes: String?
    @Option(.tlsCert) var tlsCert: String?
    @Option(.tlsKey) var tlsKey: String?
    @Option(.clientCA) var clientCA: String?
    @Option(.clientCertVerify) var clientCertVerify: String?
    @Option(.handshakeTimeout) var handshakeTimeout: String?
    @Option(.shutdownTimeout) var shutdownTimeout: String?
    @Option(.idleTimeout) var idleTimeout: String?
    @Option(.stateFile) var stateFile: String?
    @Option(.defaultLockTimeout) var defaultLockTimeout: String?
    @Option(.maxLocks) var maxLocks: String?
    @Option(.maxWaiters) var maxWaiters: String?
    @Option(.maxConnections) var maxConnections: String?
    @Option(.maxConnectionsPerIP) var maxConnectionsPerIP: String?
    @Option(.maxConcurrentStreams) var maxConcurrentStreams: String?
    @Option(.maxHeaderListBytes) var maxHeaderListBytes: String?
    @Option(.prefaceTimeout) var prefaceTimeout: String?
    @Option(.restListenAddress) var restListenAddress: String?
    @Option(.restSessionTimeout) var restSessionTimeout: String?
    @Option(.maxRESTSessions) var maxRESTSessions: String?
    @Option(.eventLoops) var eventLoops: String?
    @Option(.metricsListenAddress) var metricsListenAddress: String?
    @Option(.haEtcdEndpoints) var haEtcdEndpoints: String?
    @Option(.haCluster) var haCluster: String?
    @Option(.haAdvertiseAddress) var haAdvertiseAddress: String?
    @Option(.haLease) var haLease: String?
    @Option(.haReclaimGrace) var haReclaimGrace: String?
    @Option(.haEtcdCA) var haEtcdCA: String?
    @Option(.haEtcdCert) var haEtcdCert: String?
    @Option(.haEtcdKey) var haEtcdKey: String?
    @Option(.haEtcdUser) var haEtcdUser: String?
    @Option(.haEtcdPassword) var haEtcdPassword: String?
    @Option(.lockGCInterval) var lockGCInterval: String?
    @Option(.lockGCMinIdle) var lockGCMinIdle: String?
    @Option(.shards) var shards: String?
    @Option(.debugFault) var debugFault: String?

    @Flag(name: [.customLong("version"), .customLong("version", withSingleDash: true)], help: "Show the version.")
    var version = false

    @Flag(
        name: [.customLong("print_env_template"), .customLong("print_env_template", withSingleDash: true)],
        help: "Print every setting as LDLM_<FLAG>=default, with its help, and exit."
    )
    var printEnvTemplate = false

    @Flag(
        name: [.customLong("print_yaml_template"), .customLong("print_yaml_template", withSingleDash: true)],
        help: "Print a config file with every setting at its default, with its help, and exit."
    )
    var printYAMLTemplate = false

    /// Collected rather than refused by ArgumentParser, so the message can be ours.
    @Argument(help: .private) var unexpected: [String] = []

    var given: [ConfigSetting: String] {
        let values: [ConfigSetting: String?] = [
            .listenAddress: listenAddress, .password: password, .passwordFile: passwordFile,
            .adminPassword: adminPassword, .adminPasswordFile: adminPasswordFile, .adminIdentities: adminIdentities,
            .ipcSocketFile: ipcSocketFile,
            .keepaliveInterval: keepaliveInterval, .keepaliveTimeout: keepaliveTimeout,
            .noClearOnDisconnect: noClearOnDisconnect, .logLevel: logLevel, .configFile: configFile,
            .maxNameBytes: maxNameBytes, .maxMessageBytes: maxMessageBytes,
            .tlsCert: tlsCert, .tlsKey: tlsKey, .clientCA: clientCA, .clientCertVerify: clientCertVerify,
            .handshakeTimeout: handshakeTimeout, .shutdownTimeout: shutdownTimeout, .idleTimeout: idleTimeout,
            .stateFile: stateFile, .defaultLockTimeout: defaultLockTimeout,
            .maxLocks: maxLocks, .maxWaiters: maxWaiters, .maxConnections: maxConnections,
            .maxConnectionsPerIP: maxConnectionsPerIP, .maxConcurrentStreams: maxConcurrentStreams,
            .maxHeaderListBytes: maxHeaderListBytes, .prefaceTimeout: prefaceTimeout,
            .restListenAddress: restListenAddress, .restSessionTimeout: restSessionTimeout, .maxRESTSessions: maxRESTSessions,
            .eventLoops: eventLoops,
            .metricsListenAddress: metricsListenAddress,
            .haEtcdEndpoints: haEtcdEndpoints, .haCluster: haCluster, .haAdvertiseAddress: haAdvertiseAddress,
            .haLease: haLease, .haReclaimGrace: haReclaimGrace, .haEtcdCA: haEtcdCA, .haEtcdCert: haEtcdCert,
            .haEtcdKey: haEtcdKey, .haEtcdUser: haEtcdUser, .haEtcdPassword: haEtcdPassword,
            .lockGCInterval: lockGCInterval, .lockGCMinIdle: lockGCMinIdle, .shards: shards,
            .debugFault: debugFault,
        ]
        return values.compactMapValues { $0 }
    }

    /// Parses the command line; a bad one is a `ConfigError` with one line.
    static func read(_ arguments: [String]) throws(ConfigError) -> CommandLineRequest {
        let flags: ServerFlags
        do {
            flags = try parse(try GoCommandLine.normalize(arguments))
        } catch let error as ConfigError {
            throw error
        } catch {
            // Help is the only request that ends parsing with success: the Go
            // syntax check lets no other built-in flag through.
            if exitCode(for: error) == .success {
                return .help(helpMessage().trimmingCharacters(in: .newlines))
            }
            let firstLine = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw ConfigError("invalid command line: \(firstLine)")
        }
        if let argument = flags.unexpected.first {
            throw ConfigError("unexpected argument \"\(argument)\"")
        }
        if flags.version {
            return .version(versionText)
        }
        if flags.printEnvTemplate {
            return .template(.environment)
        }
        if flags.printYAMLTemplate {
            return .template(.yaml)
        }
        return .settings(flags.given)
    }
}

extension ConfigSetting {
    /// `--name` and `-name`, as Go's flag package takes both, and go-ldlm's `-x`.
    var flagNames: NameSpecification {
        var names: [NameSpecification.Element] = [.customLong(name), .customLong(name, withSingleDash: true)]
        if let shortName {
            names.append(.customShort(shortName))
        }
        return NameSpecification(names)
    }
}

extension Option where Value == String? {
    init(_ setting: ConfigSetting) {
        let help = ArgumentHelp(setting.helpWithDefault, valueName: setting.valueName, visibility: setting.isHiddenFromHelp ? .private : .default)
        if setting.kind == .bool {
            // So that --help shows the flag alone means true; GoCommandLine
            // has already spelled that out as `=true`.
            self.init(name: setting.flagNames, defaultAsFlag: "true", help: help)
        } else {
            self.init(name: setting.flagNames, help: help)
        }
    }
}
