/// HTTP/2 error codes (RFC 9113 section 7) used by this package.
public enum HTTP2ErrorCode {
    public static let noError: UInt32 = 0
    public static let internalError: UInt32 = 2
    public static let refusedStream: UInt32 = 7
    public static let cancel: UInt32 = 8
    public static let enhanceYourCalm: UInt32 = 0xb
}
