import Foundation
import GoDuration
import Logging

/// Turns one setting's text, from whichever source won, into its field.
extension ServerConfig {
    mutating func apply(_ setting: ConfigSetting, value: String, readFile: (String) throws -> String) throws(ConfigError) {
        switch setting {
        case .listenAddress:
            _ = try ListenAddress(parsing: value)
            listenAddress = value
        case .password:
            password = value.isEmpty ? nil : value
        case .passwordFile:
            password = try Self.readPassword(from: value, describedAs: "password file", readFile: readFile)
        case .adminPassword:
            adminPassword = value.isEmpty ? nil : value
        case .adminPasswordFile:
            adminPassword = try Self.readPassword(from: value, describedAs: "admin password file", readFile: readFile)
        case .adminIdentities:
            adminIdentities = try Self.adminIdentities(value)
        case .ipcSocketFile:
            ipcSocketFile = value.isEmpty ? nil : value
        case .keepaliveInterval:
            keepaliveInterval = try Self.duration(value, for: setting)
        case .keepaliveTimeout:
            keepaliveTimeout = try Self.duration(value, for: setting)
        case .noClearOnDisconnect:
            clearOnDisconnect = !(try Self.bool(value, for: setting))
        case .logLevel:
            logLevel = try Self.logLevel(value)
        case .maxNameBytes:
            maxNameBytes = try Self.positiveInteger(value, for: setting)
        case .maxMessageBytes:
            maxMessageBytes = try Self.positiveInteger(value, for: setting)
        case .tlsCert:
            tlsCertificatePath = value
        case .tlsKey:
            tlsKeyPath = value
        case .clientCA:
            clientCAPath = value
        case .handshakeTimeout:
            handshakeTimeout = try Self.duration(value, for: setting)
        case .shutdownTimeout:
            shutdownTimeout = try Self.duration(value, for: setting)
        case .idleTimeout:
            idleTimeout = try Self.duration(value, for: setting)
        case .stateFile:
            stateFile = value.isEmpty ? nil : value
        case .defaultLockTimeout:
            defaultLockTimeout = try Self.duration(value, for: setting)
        case .maxLocks:
            maxLocks = try Self.positiveInteger(value, for: setting)
        case .maxWaiters:
            maxWaiters = try Self.positiveInteger(value, for: setting)
        case .maxConnections:
            maxConnections = try Self.positiveInteger(value, for: setting)
        case .maxConnectionsPerIP:
            maxConnectionsPerIP = try Self.positiveInteger(value, for: setting)
        case .maxConcurrentStreams:
            maxConcurrentStreams = try Self.positiveInteger(value, for: setting, atMost: Int(UInt32.max))
        case .maxHeaderListBytes:
            maxHeaderListBytes = try Self.positiveInteger(value, for: setting, atMost: Int(UInt32.max))
        case .prefaceTimeout:
            prefaceTimeout = try Self.duration(value, for: setting)
        case .restListenAddress:
            if !value.isEmpty { _ = try ListenAddress(parsing: value) }
            restListenAddress = value.isEmpty ? nil : value
        case .restSessionTimeout:
            restSessionTimeout = try Self.duration(value, for: setting)
        case .maxRESTSessions:
            maxRESTSessions = try Self.positiveInteger(value, for: setting)
        case .eventLoops:
            eventLoops = try Self.positiveInteger(value, for: setting, atMost: Self.maxEventLoops)
        case .metricsListenAddress:
            do throws(ConfigError) {
                if !value.isEmpty { _ = try ListenAddress(parsing: value) }
            } catch {
                throw ConfigError("\(setting.name): \(error.message)")
            }
            metricsListenAddress = value.isEmpty ? nil : value
        case .haEtcdEndpoints:
            haEtcdEndpoints = try Self.etcdEndpoints(value)
        case .haCluster:
            haCluster = try Self.clusterName(value)
        case .haAdvertiseAddress:
            haAdvertiseAddress = value.isEmpty ? nil : try Self.hostAndPort(value, for: setting)
        case .haLease:
            haLease = try Self.duration(value, for: setting)
        case .haReclaimGrace:
            haReclaimGrace = try Self.duration(value, for: setting)
        case .haEtcdCA:
            haEtcdCAPath = value.isEmpty ? nil : value
        case .haEtcdCert:
            haEtcdCertificatePath = value.isEmpty ? nil : value
        case .haEtcdKey:
            haEtcdKeyPath = value.isEmpty ? nil : value
        case .haEtcdUser:
            haEtcdUser = value.isEmpty ? nil : value
        case .haEtcdPassword:
            haEtcdPassword = value.isEmpty ? nil : value
        // Checked so that a typo fails here as it would in go-ldlm, then unused.
        case .clientCertVerify:
            _ = try Self.bool(value, for: setting)
        case .lockGCInterval, .lockGCMinIdle:
            _ = try Self.duration(value, for: setting)
        case .shards:
            _ = try Self.positiveInteger(value, for: setting)
        case .debugFault:
            debugFaults = try Self.debugFaults(value)
        case .configFile:
            break
        }
    }

    /// More threads than this only share the same cores.
    static let maxEventLoops = 1024

    private static func debugFaults(_ value: String) throws(ConfigError) -> Set<DebugFault> {
        let names = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return Set(try names.map { name throws(ConfigError) in
            guard let fault = DebugFault(rawValue: name) else {
                let known = DebugFault.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigError("invalid value \"\(name)\" for --debug_fault: use \(known)")
            }
            return fault
        })
    }

    private static func etcdEndpoints(_ value: String) throws(ConfigError) -> [String] {
        let entries = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return try entries.map { entry throws(ConfigError) in try hostAndPort(entry, for: .haEtcdEndpoints) }
    }

    /// `host:port` or `[v6]:port`, with a port in 1...65535.
    private static func hostAndPort(_ value: String, for setting: ConfigSetting) throws(ConfigError) -> String {
        let address: ListenAddress
        do throws(ConfigError) {
            address = try ListenAddress(parsing: value)
        } catch {
            throw ConfigError("invalid address \"\(value)\" for --\(setting.name): \(error.message)")
        }
        guard !value.hasPrefix(":"), address.port > 0 else {
            throw ConfigError("invalid address \"\(value)\" for --\(setting.name): give host:port with a port above 0")
        }
        return value
    }

    /// The cluster name is a path segment of every etcd key the set uses.
    private static func clusterName(_ value: String) throws(ConfigError) -> String? {
        guard !value.isEmpty else { return nil }
        guard !value.contains("/"), value.utf8.count <= 256 else {
            throw ConfigError("invalid value \"\(value)\" for --ha_cluster: at most 256 bytes, without \"/\"")
        }
        return value
    }

    private static func readPassword(
        from path: String,
        describedAs file: String,
        readFile: (String) throws -> String
    ) throws(ConfigError) -> String {
        let contents: String
        do {
            contents = try readFile(path)
        } catch {
            throw ConfigError("cannot read \(file) \(path): \(error.localizedDescription)")
        }
        var password = Substring(contents)
        // `isNewline`, as "\r\n" is one Character, equal to neither "\r" nor "\n".
        while password.last?.isNewline == true { password.removeLast() }
        guard !password.isEmpty else { throw ConfigError("\(file) \(path) is empty") }
        return String(password)
    }

    private static func adminIdentities(_ value: String) throws(ConfigError) -> [AdminIdentity] {
        let entries = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return try entries.map { entry throws(ConfigError) in
            guard let identity = AdminIdentity(entry) else {
                throw ConfigError("invalid entry \"\(entry)\" in --admin_identities: use a common name, DNS:name or IP:address")
            }
            return identity
        }
    }

    private static func logLevel(_ value: String) throws(ConfigError) -> Logger.Level {
        switch value.lowercased() {
        case "debug": return .debug
        case "info": return .info
        case "warn", "warning": return .warning
        case "error": return .error
        default: throw ConfigError("invalid value \"\(value)\" for --log_level: use debug, info, warn or error")
        }
    }

    private static func duration(_ value: String, for setting: ConfigSetting) throws(ConfigError) -> Duration {
        guard let nanoseconds = parseGoDuration(value) else {
            throw ConfigError("invalid duration \"\(value)\" for --\(setting.name): use Go syntax such as 500ms, 10s or 1m30s")
        }
        return .nanoseconds(nanoseconds)
    }

    static func bool(_ value: String, for setting: ConfigSetting) throws(ConfigError) -> Bool {
        switch value.lowercased() {
        case "1", "t", "true", "yes", "on": return true
        case "0", "f", "false", "no", "off": return false
        default: throw ConfigError("invalid boolean \"\(value)\" for --\(setting.name)")
        }
    }

    private static func positiveInteger(_ value: String, for setting: ConfigSetting, atMost limit: Int = .max) throws(ConfigError) -> Int {
        guard let number = Int(value), number > 0 else {
            throw ConfigError("invalid value \"\(value)\" for --\(setting.name): must be a positive integer")
        }
        guard number <= limit else {
            throw ConfigError("invalid value \"\(value)\" for --\(setting.name): must be at most \(limit)")
        }
        return number
    }
}
