import NIOSSL
import XCTest

@testable import LDLMServer

final class CertificateIdentityTests: XCTestCase {
    /// CN=client-one, SAN DNS:client.example, IP:10.1.2.3, IP:2001:db8::1.
    private static let clientCertificate = """
-----BEGIN CERTIFICATE-----
MIIBszCCAVqgAwIBAgIUaUflVvogkEfJLn1PFoP+UwVlNggwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKY2xpZW50LW9uZTAeFw0yNjExMzAxNzAzMDZaFw0zNjExMjcx
NzAzMDZaMBUxEzARBgNVBAMMCmNsaWVudC1vbmUwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAARI7mmwe5OexHoJ1KW1fyHLll+qDzsUjlkDEfCmtLVycMomM2RgpSh7
oUe620Xcjh0BuFgncZVGyc5zrdDYgPdEo4GHMIGEMB0GA1UdDgQWBBR09KNR08D3
jmG5Q6TsO33tAqUqSzAfBgNVHSMEGDAWgBR09KNR08D3jmG5Q6TsO33tAqUqSzAP
BgNVHRMBAf8EBTADAQH/MDEGA1UdEQQqMCiCDmNsaWVudC5leGFtcGxlhwQKAQID
hxAgAQ24AAAAAAAAAAAAAAABMAoGCCqGSM49BAMCA0cAMEQCIE9T3mqfHKEK/P9R
kGhl9Qc05ItglgkoH4chlsJC7BicAiBeAmOvURqeG4IQ+roKW14zIJ5QU9vRE5Ab
2IJSo4nBRA==
-----END CERTIFICATE-----
"""

    func testNamesTheCommonNameAndTheDNSAndIPAlternativeNames() throws {
        let certificate = try NIOSSLCertificate(bytes: Array(Self.clientCertificate.utf8), format: .pem)
        let identity = CertificateIdentity(certificate)
        XCTAssertEqual(identity.commonNames, ["client-one"])
        XCTAssertEqual(identity.alternativeNames, ["DNS:client.example", "IP:10.1.2.3", "IP:2001:db8:0:0:0:0:0:1"])
        XCTAssertEqual(identity.description, "CN=client-one SAN=DNS:client.example,IP:10.1.2.3,IP:2001:db8:0:0:0:0:0:1")
    }

    func testACertificateWithoutNamesSaysSo() {
        XCTAssertEqual(CertificateIdentity(commonNames: [], alternativeNames: []).description, "(no subject names)")
    }
}
