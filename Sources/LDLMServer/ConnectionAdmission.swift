/// Counts the open connections, in total and per client IP address, and
/// refuses one that would go over either limit. Pure: ``OpenConnections``
/// asks it for each new connection and tells it of each close.
struct ConnectionAdmission {
    enum Verdict: Equatable {
        case admitted
        /// The reason goes to the log.
        case refused(ServerLimit, reason: String)
    }

    let maxConnections: Int
    let maxConnectionsPerIP: Int
    private(set) var openCount = 0
    private var openPerIP: [String: Int] = [:]

    init(maxConnections: Int, maxConnectionsPerIP: Int) {
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
    }

    /// `ip` is nil for a Unix socket connection, which has no address and
    /// counts toward the total only. An admitted connection holds its slots
    /// until ``release(ip:)``.
    mutating func admit(ip: String?) -> Verdict {
        guard openCount < maxConnections else {
            return .refused(.maxConnections, reason: "\(openCount) connections are open, the limit (max_connections)")
        }
        if let ip {
            let fromIP = openPerIP[ip, default: 0]
            guard fromIP < maxConnectionsPerIP else {
                return .refused(.maxConnectionsPerIP, reason: "\(fromIP) connections from \(ip) are open, the limit (max_connections_per_ip)")
            }
            openPerIP[ip] = fromIP + 1
        }
        openCount += 1
        return .admitted
    }

    mutating func release(ip: String?) {
        openCount -= 1
        guard let ip, let fromIP = openPerIP[ip] else { return }
        openPerIP[ip] = fromIP > 1 ? fromIP - 1 : nil
    }

    func openCount(fromIP ip: String) -> Int { openPerIP[ip, default: 0] }
}
