import Foundation

/// The settings each source gave, as text.
private struct ConfigSources {
    var flags: [ConfigSetting: String]
    var environment: [ConfigSetting: String]
    var file: [ConfigSetting: String] = [:]

    /// A secret and the file holding it (`--password` and `--password_file`)
    /// are one setting: the one from the stronger source wins, and giving
    /// both in one place is a mistake.
    mutating func chooseSource(of value: ConfigSetting, or valueFile: ConfigSetting, naming what: String) throws(ConfigError) {
        let strongest = [flags, environment, file].first { $0[value] != nil || $0[valueFile] != nil }
        guard let strongest else {
            return
        }
        if strongest[value] != nil, strongest[valueFile] != nil {
            throw ConfigError("give either \(what) or \(what) file, not both")
        }
        let loser: ConfigSetting = strongest[value] != nil ? valueFile : value
        flags[loser] = nil
        environment[loser] = nil
        file[loser] = nil
    }

    /// Flag, then environment, then config file.
    var merged: [ConfigSetting: String] {
        file.merging(environment) { $1 }.merging(flags) { $1 }
    }
}

extension ServerConfig {
    /// Resolves the configuration. `readFile` is injectable for tests.
    public static func resolve(
        arguments: [String],
        environment: [String: String],
        readFile: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
    ) throws(ConfigError) -> ConfigRequest {
        let flags: [ConfigSetting: String]
        switch try ServerFlags.read(arguments) {
        case .help(let usage): return .showHelp(usage)
        case .version(let version): return .showVersion(version)
        case .template(let template): return .showTemplate(template.text)
        case .settings(let given): flags = given
        }
        var sources = ConfigSources(
            flags: flags,
            environment: Dictionary(uniqueKeysWithValues: ConfigSetting.allCases.compactMap { setting in
                environment[setting.environmentVariable].map { (setting, $0) }
            })
        )
        if let path = sources.flags[.configFile] ?? sources.environment[.configFile] {
            let text: String
            do {
                text = try readFile(path)
            } catch {
                throw ConfigError("cannot read config file \(path): \(error.localizedDescription)")
            }
            sources.file = try ConfigFile.parse(text, path: path)
        }
        try sources.chooseSource(of: .password, or: .passwordFile, naming: "a password")
        try sources.chooseSource(of: .adminPassword, or: .adminPasswordFile, naming: "an admin password")
        let merged = sources.merged
        var config = ServerConfig()
        for setting in ConfigSetting.allCases {
            guard let value = merged[setting] else { continue }
            try config.apply(setting, value: value, readFile: readFile)
        }
        try config.validate(clientCertVerify: merged[.clientCertVerify])
        return .run(config)
    }

    /// Checks that need more than one setting.
    private func validate(clientCertVerify: String?) throws(ConfigError) {
        if keepaliveInterval > .zero, keepaliveTimeout == .zero {
            throw ConfigError("--keepalive_timeout must be greater than 0 when keepalive is on")
        }
        if (tlsCertificatePath == nil) != (tlsKeyPath == nil) {
            throw ConfigError("--tls_cert and --tls_key must be given together")
        }
        // A CA alone turns verification on, as in go-ldlm; the flag by itself
        // would promise a check that nothing could perform.
        let verificationAsked = try clientCertVerify.map { value throws(ConfigError) in
            try Self.bool(value, for: .clientCertVerify)
        } ?? false
        if verificationAsked, clientCAPath == nil {
            throw ConfigError("--client_cert_verify needs --client_ca, the CA that client certificates must chain to")
        }
        if clientCAPath != nil, !usesTLS {
            throw ConfigError("--client_ca needs --tls_cert and --tls_key")
        }
        if handshakeTimeout == .zero {
            throw ConfigError("--handshake_timeout must be greater than 0")
        }
        if shutdownTimeout == .zero {
            throw ConfigError("--shutdown_timeout must be greater than 0")
        }
        if defaultLockTimeout == .zero {
            throw ConfigError("--default_lock_timeout must be greater than 0")
        }
        if prefaceTimeout == .zero {
            throw ConfigError("--preface_timeout must be greater than 0")
        }
        if restSessionTimeout == .zero {
            throw ConfigError("--rest_session_timeout must be greater than 0")
        }
        try validateAdminAccess()
        try validateReplication()
    }

    private func validateReplication() throws(ConfigError) {
        let haSettingGiven = haCluster != nil || haAdvertiseAddress != nil || haEtcdCAPath != nil || haEtcdCertificatePath != nil
            || haEtcdKeyPath != nil || haEtcdUser != nil || haEtcdPassword != nil
            || haLease != ServerConfig().haLease || haReclaimGrace != ServerConfig().haReclaimGrace
        guard isReplica else {
            if haSettingGiven {
                throw ConfigError("the --ha_* settings need --ha_etcd_endpoints, the etcd cluster the replicas share")
            }
            return
        }
        guard haCluster != nil, haAdvertiseAddress != nil else {
            throw ConfigError("--ha_etcd_endpoints needs --ha_cluster and --ha_advertise_address")
        }
        if stateFile != nil {
            throw ConfigError("--state_file cannot be used with --ha_etcd_endpoints: etcd is the one record of a replica set's locks")
        }
        if restListenAddress != nil {
            throw ConfigError("--rest_listen_address cannot be used with --ha_etcd_endpoints: REST sessions are not replicated")
        }
        if haLease < .seconds(2) {
            throw ConfigError("--ha_lease must be at least 2s: etcd leases are whole seconds, and a primary steps down a fifth before its own ends")
        }
        if haReclaimGrace == .zero {
            throw ConfigError("--ha_reclaim_grace must be greater than 0")
        }
        if (haEtcdCertificatePath == nil) != (haEtcdKeyPath == nil) {
            throw ConfigError("--ha_etcd_cert and --ha_etcd_key must be given together")
        }
        if (haEtcdUser == nil) != (haEtcdPassword == nil) {
            throw ConfigError("--ha_etcd_user and --ha_etcd_password must be given together")
        }
        if maxNameBytes > Self.maxReplicatedNameBytes {
            throw ConfigError("--max_name_bytes must be at most \(Self.maxReplicatedNameBytes) with --ha_etcd_endpoints: each lock is an etcd key, and etcd refuses requests over 1.5 MiB")
        }
    }

    /// A batch of lock writes to etcd stays under its 1.5 MiB request limit
    /// with a name this long in it.
    static let maxReplicatedNameBytes = 512 * 1024

    private func validateAdminAccess() throws(ConfigError) {
        if !adminIdentities.isEmpty, clientCAPath == nil {
            throw ConfigError("--admin_identities needs --client_ca: the identities are read from verified client certificates")
        }
        if let adminPassword, adminPassword == password {
            throw ConfigError("--admin_password must differ from --password: the lock password must not open the admin service")
        }
    }
}
