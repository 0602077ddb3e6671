/// One setting of `ldlm-server`: its flag `--<name>`, environment variable
/// `LDLM_<NAME>` and config-file key `<name>` all carry the same text value.
enum ConfigSetting: String, CaseIterable {
    case listenAddress = "listen_address"
    case password
    case passwordFile = "password_file"
    case adminPassword = "admin_password"
    case adminPasswordFile = "admin_password_file"
    case adminIdentities = "admin_identities"
    case ipcSocketFile = "ipc_socket_file"
    case keepaliveInterval = "keepalive_interval"
    case keepaliveTimeout = "keepalive_timeout"
    case noClearOnDisconnect = "no_clear_on_disconnect"
    case logLevel = "log_level"
    case configFile = "config_file"
    case maxNameBytes = "max_name_bytes"
    case maxMessageBytes = "max_message_bytes"
    case tlsCert = "tls_cert"
    case tlsKey = "tls_key"
    case clientCA = "client_ca"
    case clientCertVerify = "client_cert_verify"
    case handshakeTimeout = "handshake_timeout"
    case shutdownTimeout = "shutdown_timeout"
    case idleTimeout = "idle_timeout"
    case stateFile = "state_file"
    case defaultLockTimeout = "default_lock_timeout"
    case maxLocks = "max_locks"
    case maxWaiters = "max_waiters"
    case maxConnections = "max_connections"
    case maxConnectionsPerIP = "max_connections_per_ip"
    case maxConcurrentStreams = "max_concurrent_streams"
    case maxHeaderListBytes = "max_header_list_bytes"
    case prefaceTimeout = "preface_timeout"
    case restListenAddress = "rest_listen_address"
    case restSessionTimeout = "rest_session_timeout"
    case maxRESTSessions = "max_rest_sessions"
    case eventLoops = "event_loops"
    case metricsListenAddress = "metrics_listen_address"
    case haEtcdEndpoints = "ha_etcd_endpoints"
    case haCluster = "ha_cluster"
    case haAdvertiseAddress = "ha_advertise_address"
    case haLease = "ha_lease"
    case haReclaimGrace = "ha_reclaim_grace"
    case haEtcdCA = "ha_etcd_ca"
    case haEtcdCert = "ha_etcd_cert"
    case haEtcdKey = "ha_etcd_key"
    case haEtcdUser = "ha_etcd_user"
    case haEtcdPassword = "ha_etcd_password"
    // go-ldlm garbage-collects idle locks on a timer and shards its lock table;
    // here an idle lock is freed at once and one event loop owns every lock, so
    // these are accepted for drop-in command lines only.
    case lockGCInterval = "lock_gc_interval"
    case lockGCMinIdle = "lock_gc_min_idle"
    case shards
    case debugFault = "debug_fault"

    enum Kind {
        case text, duration, bool, positiveInteger
    }

    var name: String { rawValue }

    var kind: Kind {
        switch self {
        case .listenAddress, .password, .passwordFile, .adminPassword, .adminPasswordFile, .adminIdentities, .ipcSocketFile,
            .logLevel, .configFile, .tlsCert, .tlsKey, .clientCA, .stateFile, .debugFault, .restListenAddress, .metricsListenAddress,
            .haEtcdEndpoints, .haCluster, .haAdvertiseAddress, .haEtcdCA, .haEtcdCert, .haEtcdKey, .haEtcdUser, .haEtcdPassword:
            return .text
        case .keepaliveInterval, .keepaliveTimeout, .handshakeTimeout, .shutdownTimeout, .idleTimeout, .defaultLockTimeout,
            .prefaceTimeout, .restSessionTimeout, .haLease, .haReclaimGrace,
            .lockGCInterval, .lockGCMinIdle:
            return .duration
        case .noClearOnDisconnect, .clientCertVerify:
            return .bool
        case .maxNameBytes, .maxMessageBytes, .shards, .maxLocks, .maxWaiters, .maxConnections, .maxConnectionsPerIP,
            .maxConcurrentStreams, .maxHeaderListBytes, .maxRESTSessions, .eventLoops:
            return .positiveInteger
        }
    }

    /// go-ldlm v1.2.0's one-letter spelling of the same flag.
    var shortName: Character? {
        switch self {
        case .listenAddress: return "l"
        case .keepaliveInterval: return "k"
        case .keepaliveTimeout: return "t"
        case .configFile: return "c"
        case .lockGCInterval: return "g"
        case .lockGCMinIdle: return "m"
        case .logLevel: return "v"
        case .noClearOnDisconnect: return "n"
        case .stateFile: return "s"
        case .defaultLockTimeout: return "d"
        case .restListenAddress: return "r"
        default: return nil
        }
    }

    /// The setting a flag name stands for: its long name or go-ldlm's short one.
    static func named(_ name: Substring) -> ConfigSetting? {
        allCases.first { $0.name == name || ($0.shortName.map { String($0) == name } ?? false) }
    }

    /// The `--ha_*` settings, which only a replica may be given.
    var isReplicaSetting: Bool { rawValue.hasPrefix("ha_") }


    var environmentVariable: String { "LDLM_" + rawValue.uppercased() }

    /// Placeholder for the value in `--help`.
    var valueName: String {
        switch self {
        case .listenAddress, .restListenAddress, .metricsListenAddress, .haAdvertiseAddress: return "host:port"
        case .haEtcdEndpoints: return "host:port,..."
        case .password, .adminPassword, .haEtcdPassword, .haCluster, .haEtcdUser: return "string"
        case .adminIdentities, .debugFault: return "names"
        case .logLevel: return "level"
        default: break
        }
        switch kind {
        case .text: return "path"
        case .duration: return "duration"
        case .bool: return "bool"
        case .positiveInteger: return "int"
        }
    }

    var help: String {
        switch self {
        case .listenAddress: return "host:port to listen on; :port for every interface"
        case .password: return "password every lock call over the network must send as `authorization` metadata"
        case .passwordFile: return "file holding the password (read once at start, trailing newline stripped)"
        case .adminPassword:
            return "password that opens the admin service over the network, sent as `authorization` metadata; must differ from --password"
        case .adminPasswordFile: return "file holding the admin password (read once at start, trailing newline stripped)"
        case .adminIdentities:
            return "comma-separated client certificate names that open the admin service over the network: a common name, DNS:name or IP:address (needs --client_ca)"
        case .ipcSocketFile:
            return "Unix socket (mode 0600) serving the lock and admin services without a password; empty is off (default off)"
        case .keepaliveInterval: return "time between keepalive PINGs; 0 disables them"
        case .keepaliveTimeout: return "time to wait for a PING ACK before closing the connection"
        case .noClearOnDisconnect: return "keep a client's locks when its connection ends"
        case .logLevel: return "debug, info, warn or error"
        case .configFile: return "YAML or JSON file with any of these options as keys"
        case .maxNameBytes: return "longest lock name accepted, in bytes"
        case .maxMessageBytes: return "largest request message accepted, in bytes"
        case .tlsCert: return "PEM certificate chain; with --tls_key the listener speaks TLS (1.2+, ALPN h2)"
        case .tlsKey: return "PEM private key for --tls_cert"
        case .clientCA:
            return "PEM CA bundle; clients must present a certificate that chains to it (this alone turns verification on)"
        case .clientCertVerify:
            return "accepted for go-ldlm command lines; needs --client_ca, which is what turns verification on"
        case .handshakeTimeout: return "time a new connection gets to finish its TLS handshake"
        case .shutdownTimeout:
            return "time a graceful drain (SIGTERM, SIGINT) may take before connections are closed; must be > 0"
        case .idleTimeout:
            return "close a connection with no open streams, held locks or waiting calls after this long, with GOAWAY; 0 is off"
        case .stateFile:
            return "append-only log of held locks, synced before each grant, unlock or renew is answered; locks survive restarts (default off)"
        case .defaultLockTimeout:
            return "lease given to each lock restored from --state_file, unless its own lease has longer to run"
        case .maxLocks:
            return "lock names the server holds at once; a Lock or TryLock that would create one more gets RESOURCE_EXHAUSTED"
        case .maxWaiters:
            return "Lock calls queued on one lock; one more gets RESOURCE_EXHAUSTED"
        case .maxConnections:
            return "connections open at once, Unix socket included; one more is closed at once"
        case .maxConnectionsPerIP:
            return "TCP connections open at once from one IP address; one more is closed at once"
        case .maxConcurrentStreams: return "calls one connection may have open at once, announced in SETTINGS"
        case .maxHeaderListBytes:
            return "largest request header list, as HTTP/2 counts it; a larger one has its stream reset"
        case .prefaceTimeout:
            return "time a connection gets to send its HTTP/2 preface (after TLS), and to finish any header block it starts"
        case .restListenAddress:
            return "host:port of the REST gateway (HTTP/1.1 + JSON, same password and TLS as gRPC); empty is off (default off)"
        case .restSessionTimeout:
            return "a REST session unused this long ends, and its locks go as a closed connection's do"
        case .maxRESTSessions:
            return "REST sessions open at once; POST /session beyond it gets 429"
        case .eventLoops:
            return "event loops (threads) serving connections; the first also owns every lock, the others hand it their calls in batches (more than 1 pays off only with many busy connections on many cores)"
        case .metricsListenAddress:
            return "host:port serving Prometheus /metrics and the /healthz and /readyz probes over HTTP/1.1; empty is off (default off)"
        case .haEtcdEndpoints:
            return "etcd client endpoints; makes this server one replica of a set whose primary etcd elects and whose locks etcd keeps (default off)"
        case .haCluster: return "name of the replica set; its etcd keys live under /<name>/"
        case .haAdvertiseAddress: return "host:port clients reach this replica at; standbys send it to clients in the ldlm-primary trailer"
        case .haLease:
            return "TTL of the replica's etcd lease (whole seconds, rounded up; etcd may raise it to its minimum): a dead primary is replaced within about this long"
        case .haReclaimGrace:
            return "how long a new primary keeps the previous primary's locks for their holders to reclaim by Renew or Unlock"
        case .haEtcdCA: return "PEM CA bundle that etcd's certificate must chain to; turns TLS to etcd on"
        case .haEtcdCert: return "PEM client certificate for etcd's --client-cert-auth (needs --ha_etcd_key)"
        case .haEtcdKey: return "PEM private key for --ha_etcd_cert"
        case .haEtcdUser: return "etcd user, with etcd auth on (needs --ha_etcd_password)"
        case .haEtcdPassword: return "password of --ha_etcd_user; prefer LDLM_HA_ETCD_PASSWORD or the config file to a flag"
        case .lockGCInterval, .lockGCMinIdle: return "accepted for go-ldlm command lines; idle locks are freed immediately"
        case .shards: return "accepted for go-ldlm command lines; one event loop owns every lock"
        case .debugFault: return "for testing checkers only: comma-separated deliberate bugs (skip_size_check, ack_before_sync)"
        }
    }

    /// What the server uses when no source gives the setting, spelled as a
    /// flag would give it; nil for a setting that is off until given.
    /// `--help` and the templates show it; `ServerConfig()` holds the same
    /// values, and ConfigTemplateTests checks that the two agree.
    var defaultValue: String? {
        switch self {
        case .listenAddress: return "localhost:3144"
        case .keepaliveInterval: return "1m"
        case .keepaliveTimeout, .handshakeTimeout, .shutdownTimeout, .prefaceTimeout: return "10s"
        case .noClearOnDisconnect, .clientCertVerify: return "false"
        case .logLevel: return "info"
        case .maxNameBytes: return "4096"
        case .maxMessageBytes: return "4194304"
        case .idleTimeout: return "0"
        case .defaultLockTimeout, .restSessionTimeout: return "10m"
        case .maxLocks: return "1000000"
        case .maxWaiters, .maxConnections, .maxRESTSessions: return "10000"
        case .maxConnectionsPerIP, .maxConcurrentStreams: return "1000"
        case .maxHeaderListBytes: return "16384"
        case .haLease: return "5s"
        case .haReclaimGrace: return "15s"
        case .eventLoops: return "1"
        // go-ldlm's garbage collector and shard defaults would only suggest
        // that these do something here.
        case .password, .passwordFile, .adminPassword, .adminPasswordFile, .adminIdentities, .ipcSocketFile, .configFile,
            .tlsCert, .tlsKey, .clientCA, .stateFile, .lockGCInterval, .lockGCMinIdle, .shards, .debugFault,
            .restListenAddress, .metricsListenAddress, .haEtcdEndpoints, .haCluster, .haAdvertiseAddress, .haEtcdCA, .haEtcdCert,
            .haEtcdKey, .haEtcdUser, .haEtcdPassword:
            return nil
        }
    }

    /// `help` with the default, as `--help` lists it.
    var helpWithDefault: String {
        defaultValue.map { "\(help) (default \($0))" } ?? help
    }

    /// Left out of `--help` and the templates: nobody should find a way to
    /// break the server there.
    var isHiddenFromHelp: Bool { self == .debugFault }
}
