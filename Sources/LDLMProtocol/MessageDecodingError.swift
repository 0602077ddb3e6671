/// Why bytes are not a valid message; the text goes into `grpc-message`.
public struct MessageDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}
