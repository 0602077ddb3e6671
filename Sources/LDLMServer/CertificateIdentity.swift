import NIOSSL

/// Who a client certificate names: its subject common name and its DNS and IP
/// subject alternative names.
struct CertificateIdentity: CustomStringConvertible {
    let commonName: String?
    let alternativeNames: [String]

    init(_ certificate: NIOSSLCertificate) {
        // NIOSSL exposes the common name only through its description.
        commonName = Self.field("common_name", in: certificate.description)
        alternativeNames = certificate._subjectAlternativeNames().compactMap { name in
            switch name.nameType {
            case .dnsName:
                return "DNS:" + String(decoding: name.contents, as: UTF8.self)
            case .ipAddress:
                return Self.ipAddress(Array(name.contents)).map { "IP:" + $0 }
            default:
                return nil
            }
        }
    }

    var description: String {
        var parts: [String] = []
        if let commonName { parts.append("CN=\(commonName)") }
        if !alternativeNames.isEmpty { parts.append("SAN=" + alternativeNames.joined(separator: ",")) }
        return parts.isEmpty ? "(no subject names)" : parts.joined(separator: " ")
    }

    private static func ipAddress(_ bytes: [UInt8]) -> String? {
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

    private static func field(_ name: String, in description: String) -> String? {
        guard let range = description.range(of: ";\(name)=") else { return nil }
        let value = description[range.upperBound...].prefix { $0 != ";" && $0 != ">" }
        return value.isEmpty ? nil : String(value)
    }
}
