import Foundation
import LDLMCore
import LDLMProtocol

/// The JSON bodies of the REST gateway, shaped as go-ldlm's grpc-gateway
/// shapes them: requests read as proto3 JSON reads `ldlm.proto` messages,
/// answers written as proto3 JSON writes them with unset scalars included.
enum RESTMessages {
    /// What a `POST /v1/lock` asks for (go-ldlm's `TryLockRequest`).
    struct TryLock: Equatable {
        var name = ""
        var lockTimeoutSeconds: Int32?
        var size: Int32?
    }

    struct Unlock: Equatable {
        var name = ""
        var key = ""
    }

    struct Renew: Equatable {
        var name = ""
        var key = ""
        var lockTimeoutSeconds: Int32 = 0
    }

    /// A body that is not the message; `message` says why, for the 400 answer.
    struct DecodingError: Error, Equatable {
        let message: String
    }

    /// Reads a request body as `Message`; an empty body is the empty
    /// message, as grpc-gateway takes it.
    static func decode<Message: Decodable>(_: Message.Type, from body: [UInt8]) throws(DecodingError) -> Message {
        let whitespace: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        let json = body.allSatisfy(whitespace.contains) ? Data("{}".utf8) : Data(body)
        do {
            return try JSONDecoder().decode(Message.self, from: json)
        } catch let error as DecodingError {
            throw error
        } catch Swift.DecodingError.typeMismatch(_, let context) where context.codingPath.isEmpty {
            throw DecodingError(message: "request body must be a JSON object")
        } catch {
            throw DecodingError(message: "request body is not valid JSON")
        }
    }

    // MARK: Answers

    /// `LockResponse`: `key` is "" when nothing is held, `error` only when
    /// set, and `fencingToken` (our field 1000) a decimal string, as proto3
    /// JSON writes 64-bit integers so that JavaScript keeps every digit.
    static func lockResponse(locked: Bool, name: String, key: String = "", error: LDLMError? = nil, fencingToken: UInt64 = 0) -> [UInt8] {
        var json = JSONObjectWriter()
        json.add("locked", bool: locked)
        json.add("name", string: name)
        json.add("key", string: key)
        if let error { json.add("error", raw: errorObject(error)) }
        json.add("fencingToken", string: String(fencingToken))
        return json.bytes
    }

    static func unlockResponse(unlocked: Bool, name: String, error: LDLMError? = nil) -> [UInt8] {
        var json = JSONObjectWriter()
        json.add("unlocked", bool: unlocked)
        json.add("name", string: name)
        if let error { json.add("error", raw: errorObject(error)) }
        return json.bytes
    }

    /// grpc-gateway's answer to a failed call: the gRPC status code and
    /// message, and an empty `details`.
    static func statusError(code: Int, message: String) -> [UInt8] {
        var json = JSONObjectWriter()
        json.add("code", raw: String(code))
        json.add("message", string: message)
        json.add("details", raw: "[]")
        return json.bytes
    }

    private static func errorObject(_ error: LDLMError) -> String {
        var json = JSONObjectWriter()
        json.add("code", string: errorCodeName(error.code))
        json.add("message", string: error.message)
        return String(decoding: json.bytes, as: UTF8.self)
    }

    /// The enum value's name in `ldlm.proto`, as proto3 JSON writes enums.
    static func errorCodeName(_ code: ErrorCode) -> String {
        switch code {
        case .unknown: return "Unknown"
        case .lockDoesNotExist: return "LockDoesNotExist"
        case .invalidLockKey: return "InvalidLockKey"
        case .lockWaitTimeout: return "LockWaitTimeout"
        case .notLocked: return "NotLocked"
        case .lockDoesNotExistOrInvalidKey: return "LockDoesNotExistOrInvalidKey"
        case .lockSizeMismatch: return "LockSizeMismatch"
        case .invalidLockSize: return "InvalidLockSize"
        }
    }
}

extension RESTMessages.TryLock: Decodable {
    init(from decoder: Decoder) throws {
        let fields = try JSONFields(decoder)
        self.init(name: try fields.string("name") ?? "", lockTimeoutSeconds: try fields.int32("lock_timeout_seconds"), size: try fields.int32("size"))
    }
}

extension RESTMessages.Unlock: Decodable {
    init(from decoder: Decoder) throws {
        let fields = try JSONFields(decoder)
        self.init(name: try fields.string("name") ?? "", key: try fields.string("key") ?? "")
    }
}

extension RESTMessages.Renew: Decodable {
    init(from decoder: Decoder) throws {
        let fields = try JSONFields(decoder)
        self.init(
            name: try fields.string("name") ?? "",
            key: try fields.string("key") ?? "",
            lockTimeoutSeconds: try fields.int32("lock_timeout_seconds") ?? 0
        )
    }
}

/// The members of a request's JSON object, read as proto3 JSON reads a
/// message: a field under its proto name or its lowerCamelCase JSON name,
/// `null` as unset, an int32 as an integral number or a decimal string,
/// unknown members ignored.
private struct JSONFields {
    private let container: KeyedDecodingContainer<MemberName>

    init(_ decoder: Decoder) throws {
        container = try decoder.container(keyedBy: MemberName.self)
    }

    private struct MemberName: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    func string(_ protoName: String) throws(RESTMessages.DecodingError) -> String? {
        guard let key = presentKey(protoName) else { return nil }
        guard let string = try? container.decode(String.self, forKey: key) else {
            throw RESTMessages.DecodingError(message: "invalid value for string field \(protoName)")
        }
        return string
    }

    func int32(_ protoName: String) throws(RESTMessages.DecodingError) -> Int32? {
        guard let key = presentKey(protoName) else { return nil }
        if let number = try? container.decode(Int32.self, forKey: key) {
            return number
        }
        if let string = try? container.decode(String.self, forKey: key), let number = Int32(string) {
            return number
        }
        throw RESTMessages.DecodingError(message: "invalid value for int32 field \(protoName)")
    }

    /// The member's key under either name, unless absent or `null`.
    private func presentKey(_ protoName: String) -> MemberName? {
        for name in [protoName, Self.jsonName(protoName)] {
            let key = MemberName(stringValue: name)
            if container.contains(key), (try? container.decodeNil(forKey: key)) == false {
                return key
            }
        }
        return nil
    }

    /// `lock_timeout_seconds` → `lockTimeoutSeconds`, protoc's default json_name.
    private static func jsonName(_ protoName: String) -> String {
        let words = protoName.split(separator: "_")
        return words.enumerated()
            .map { $0.offset == 0 ? String($0.element) : $0.element.prefix(1).uppercased() + $0.element.dropFirst() }
            .joined()
    }
}

/// Writes one JSON object, members in the order added, strings escaped.
struct JSONObjectWriter {
    private var text = "{"
    private var isEmpty = true

    mutating func add(_ key: String, string value: String) {
        add(key, raw: Self.quoted(value))
    }

    mutating func add(_ key: String, bool value: Bool) {
        add(key, raw: value ? "true" : "false")
    }

    /// `raw` is already JSON.
    mutating func add(_ key: String, raw: String) {
        if !isEmpty { text += "," }
        isEmpty = false
        text += Self.quoted(key) + ":" + raw
    }

    var bytes: [UInt8] { Array((text + "}").utf8) }

    static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
