/// `host:port` as ldlm-server takes it: `localhost:3144`, `[::1]:3144`, or
/// `:3144` for every interface.
struct ListenAddress: Equatable {
    let host: String
    let port: Int

    init(parsing text: String) throws(ConfigError) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ConfigError("invalid listen address \"\(text)\": expected host:port")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
        }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ConfigError("invalid port in listen address \"\(text)\"")
        }
        self.host = host.isEmpty ? "::" : host
        self.port = port
    }
}
