/// One header field, pseudo-headers (`:path`) included.
public struct HTTP2Header: Equatable, Hashable, Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

extension Array where Element == HTTP2Header {
    /// The value of the first field called `name` (names arrive lower-case in HTTP/2).
    public func first(named name: String) -> String? {
        first { $0.name == name }?.value
    }
}
