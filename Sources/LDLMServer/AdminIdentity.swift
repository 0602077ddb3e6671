#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One entry of `--admin_identities`: `DNS:name` or `IP:address` names a
/// subject alternative name, anything else a subject common name.
struct AdminIdentity: Equatable, Sendable {
    enum Kind: Equatable, Sendable {
        case commonName, alternativeName
    }

    let kind: Kind
    let value: String

    /// Nil for an entry that can match no certificate; IP addresses are
    /// respelled as ``CertificateIdentity`` spells them (`::1` as `0:0:0:0:0:0:0:1`).
    init?(_ entry: String) {
        if entry.hasPrefix("DNS:") {
            let name = entry.dropFirst(4)
            guard !name.isEmpty else { return nil }
            kind = .alternativeName
            value = "DNS:" + name.lowercased()
        } else if entry.hasPrefix("IP:") {
            guard let bytes = ipAddressBytes(String(entry.dropFirst(3))),
                  let address = CertificateIdentity.ipAddress(bytes)
            else { return nil }
            kind = .alternativeName
            value = "IP:" + address
        } else {
            guard !entry.isEmpty else { return nil }
            kind = .commonName
            value = entry
        }
    }

    /// DNS names are compared without case, as DNS does; the rest exactly.
    func matches(_ identity: CertificateIdentity) -> Bool {
        switch kind {
        case .commonName: return identity.commonNames.contains(value)
        case .alternativeName:
            return identity.alternativeNames.contains { name in
                (name.hasPrefix("DNS:") ? "DNS:" + name.dropFirst(4).lowercased() : name) == value
            }
        }
    }
}

/// The 4 or 16 bytes of an IPv4 or IPv6 address in text.
private func ipAddressBytes(_ text: String) -> [UInt8]? {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
        return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
        return withUnsafeBytes(of: &v6) { Array($0) }
    }
    return nil
}
