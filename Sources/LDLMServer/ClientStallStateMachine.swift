/// Follows the frame boundaries of what an HTTP/2 client sends, reading only
/// frame headers, to tell whether it owes the rest of something it must send
/// in one go: its connection preface (the 24-byte magic and its first frame,
/// SETTINGS), or a header block (HEADERS or PUSH_PROMISE and CONTINUATIONs,
/// up to the end of the frame with END_HEADERS). A client that stays in debt
/// past the preface timeout is stalling. Pure: ``ClientStallTimeout`` feeds
/// it bytes and keeps the timer; nghttp2 checks what the bytes say.
struct ClientStallStateMachine {
    enum Debt: Equatable {
        case preface
        case headerBlock
    }

    private static let prefaceMagicLength = 24
    private static let frameHeaderLength = 9
    private static let headersType: UInt8 = 0x1
    private static let pushPromiseType: UInt8 = 0x5
    private static let continuationType: UInt8 = 0x9
    private static let endHeadersFlag: UInt8 = 0x4

    private var magicBytesLeft = prefaceMagicLength
    private var hasCompletedFirstFrame = false
    private var isInHeaderBlock = false
    /// Bytes of the current frame header seen so far (0 between frames), and
    /// its length, type and flags bytes as they arrive.
    private var frameHeaderBytesSeen = 0
    private var frameHeaderPrefix: UInt64 = 0
    private var payloadBytesLeft = 0
    private var currentFrameEndsHeaderBlock = false

    /// What the client has begun and not finished, if anything.
    var debt: Debt? {
        if !hasCompletedFirstFrame { return .preface }
        return isInHeaderBlock ? .headerBlock : nil
    }

    mutating func received(_ bytes: UnsafeRawBufferPointer) {
        var index = 0
        if magicBytesLeft > 0 {
            index = min(magicBytesLeft, bytes.count)
            magicBytesLeft -= index
        }
        while index < bytes.count {
            if payloadBytesLeft > 0 {
                let taken = min(payloadBytesLeft, bytes.count - index)
                payloadBytesLeft -= taken
                index += taken
                if payloadBytesLeft == 0 { frameEnded() }
            } else if frameHeaderBytesSeen == 0, bytes.count - index >= Self.frameHeaderLength {
                // The common case: a whole frame header in this read.
                for offset in 0..<5 {
                    frameHeaderPrefix = frameHeaderPrefix << 8 | UInt64(bytes[index + offset])
                }
                index += Self.frameHeaderLength
                frameHeaderCompleted()
            } else {
                if frameHeaderBytesSeen < 5 {
                    frameHeaderPrefix = frameHeaderPrefix << 8 | UInt64(bytes[index])
                }
                frameHeaderBytesSeen += 1
                index += 1
                if frameHeaderBytesSeen == Self.frameHeaderLength { frameHeaderCompleted() }
            }
        }
    }

    private mutating func frameHeaderCompleted() {
        let length = Int(frameHeaderPrefix >> 16)
        let type = UInt8(truncatingIfNeeded: frameHeaderPrefix >> 8)
        let flags = UInt8(truncatingIfNeeded: frameHeaderPrefix)
        frameHeaderPrefix = 0
        frameHeaderBytesSeen = 0
        switch type {
        case Self.headersType, Self.pushPromiseType, Self.continuationType:
            isInHeaderBlock = true
            currentFrameEndsHeaderBlock = flags & Self.endHeadersFlag != 0
        default:
            currentFrameEndsHeaderBlock = false
        }
        payloadBytesLeft = length
        if length == 0 { frameEnded() }
    }

    private mutating func frameEnded() {
        hasCompletedFirstFrame = true
        if currentFrameEndsHeaderBlock {
            isInHeaderBlock = false
            currentFrameEndsHeaderBlock = false
        }
    }
}
