import NIOSSL
import X509

/// Who a client certificate names: its subject common names and its DNS and IP
/// subject alternative names.
struct CertificateIdentity: CustomStringConvertible, Equatable {
    let commonNames: [String]
    let alternativeNames: [String]

    init(commonNames: [String], alternativeNames: [String]) {
        self.commonNames = commonNames
        self.alternativeNames = alternativeNames
    }

    /// A certificate that does not parse (NIOSSL accepted it, so this is not
    /// expected) names nobody rather than failing the connection.
    init(_ certificate: NIOSSLCertificate) {
        guard let bytes = try? certificate.toDERBytes(), let parsed = try? Certificate(derEncoded: bytes) else {
            self.init(commonNames: [], alternativeNames: [])
            return
        }
        self.init(parsed)
    }

    init(_ certificate: Certificate) {
        commonNames = certificate.subject.flatMap { $0 }
            .filter { $0.type == .RDNAttributeType.commonName }
            .map { String(describing: $0.value) }
        let names: SubjectAlternativeNames? = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        alternativeNames = (names.map(Array.init) ?? []).compactMap { name -> String? in
            switch name {
            case .dnsName(let dns): return "DNS:" + dns
            case .ipAddress(let octets): return Self.ipAddress(Array(octets.bytes)).map { "IP:" + $0 }
            default: return nil
            }
        }
    }

    var description: String {
        var parts = commonNames.map { "CN=\($0)" }
        if !alternativeNames.isEmpty { parts.append("SAN=" + alternativeNames.joined(separator: ",")) }
        return parts.isEmpty ? "(no subject names)" : parts.joined(separator: " ")
    }

    /// `a.b.c.d`, or eight hexadecimal groups without `::` shortening.
    static func ipAddress(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4:
            return bytes.map(String.init).joined(separator: ".")
        case 16:
            return stride(from: 0, to: 16, by: 2)
                .map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        default:
            return nil
        }
    }
}
