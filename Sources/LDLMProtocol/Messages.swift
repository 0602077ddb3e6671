/// Swift views of the messages in `Protos/ldlm.proto`. Encoding and decoding go
/// through the protobuf-c code generated from it (see `ProtobufCMessage.swift`).

public enum ErrorCode: Int32, Sendable, CaseIterable {
    case unknown = 0
    case lockDoesNotExist = 1
    case invalidLockKey = 2
    case lockWaitTimeout = 3
    case notLocked = 4
    case lockDoesNotExistOrInvalidKey = 5
    case lockSizeMismatch = 6
    case invalidLockSize = 7
}

public struct LDLMError: Equatable, Sendable {
    public var code: ErrorCode
    public var message: String

    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }
}

public struct LockRequest: Equatable, Sendable {
    public var name: String
    public var waitTimeoutSeconds: Int32?
    public var lockTimeoutSeconds: Int32?
    public var size: Int32?

    public init(name: String, waitTimeoutSeconds: Int32? = nil, lockTimeoutSeconds: Int32? = nil, size: Int32? = nil) {
        self.name = name
        self.waitTimeoutSeconds = waitTimeoutSeconds
        self.lockTimeoutSeconds = lockTimeoutSeconds
        self.size = size
    }
}

public struct TryLockRequest: Equatable, Sendable {
    public var name: String
    public var lockTimeoutSeconds: Int32?
    public var size: Int32?

    public init(name: String, lockTimeoutSeconds: Int32? = nil, size: Int32? = nil) {
        self.name = name
        self.lockTimeoutSeconds = lockTimeoutSeconds
        self.size = size
    }
}

public struct LockResponse: Equatable, Sendable {
    public var locked: Bool
    public var name: String
    public var key: String
    public var error: LDLMError?
    /// 0 when nothing is held; see `fencing_token` in `Protos/ldlm.proto`.
    public var fencingToken: UInt64

    public init(locked: Bool, name: String, key: String = "", error: LDLMError? = nil, fencingToken: UInt64 = 0) {
        self.locked = locked
        self.name = name
        self.key = key
        self.error = error
        self.fencingToken = fencingToken
    }
}

public struct UnlockRequest: Equatable, Sendable {
    public var name: String
    public var key: String

    public init(name: String, key: String) {
        self.name = name
        self.key = key
    }
}

public struct UnlockResponse: Equatable, Sendable {
    public var unlocked: Bool
    public var name: String
    public var error: LDLMError?

    public init(unlocked: Bool, name: String, error: LDLMError? = nil) {
        self.unlocked = unlocked
        self.name = name
        self.error = error
    }
}

/// The body of both `RefreshLock` (the original name) and `Renew`: the two
/// messages have the same fields and numbers.
public struct RenewRequest: Equatable, Sendable {
    public var name: String
    public var key: String
    public var lockTimeoutSeconds: Int32

    public init(name: String, key: String, lockTimeoutSeconds: Int32) {
        self.name = name
        self.key = key
        self.lockTimeoutSeconds = lockTimeoutSeconds
    }
}
