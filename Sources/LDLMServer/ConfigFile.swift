import Foundation
import Yams

/// `--config_file`: a flat JSON object or YAML mapping of setting names to
/// values, read as text so that file values pass the same checks as flags.
enum ConfigFile {
    static func parse(_ text: String, path: String) throws(ConfigError) -> [ConfigSetting: String] {
        let entries = text.drop(while: \.isWhitespace).hasPrefix("{")
            ? try jsonEntries(text, path: path)
            : try yamlEntries(text, path: path)
        var settings: [ConfigSetting: String] = [:]
        for (key, value) in entries {
            guard let setting = ConfigSetting(rawValue: key) else {
                throw ConfigError("config file \(path): unknown option \"\(key)\"")
            }
            settings[setting] = value
        }
        return settings
    }

    /// JSON strings, numbers and booleans (`true` reads as `1`) as text.
    private static func jsonEntries(_ text: String, path: String) throws(ConfigError) -> [(String, String)] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw ConfigError("config file \(path) is not a valid JSON object")
        }
        return try object.sorted { $0.key < $1.key }.map { key, value throws(ConfigError) in
            switch value {
            case let string as String: return (key, string)
            case let number as NSNumber: return (key, number.stringValue)
            default: throw ConfigError("config file \(path): value of \"\(key)\" must be a string, number or boolean")
            }
        }
    }

    /// Scalars as written (quotes removed), not as YAML would type them: a
    /// password `0x1F` or `yes` stays that text, not the number 31 or `true`.
    private static func yamlEntries(_ text: String, path: String) throws(ConfigError) -> [(String, String)] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError("config file \(path)\(describe(error))")
        }
        guard let root else {
            return []
        }
        guard let mapping = root.mapping else {
            throw ConfigError("config file \(path) line \(root.mark?.line ?? 1): expected \"key: value\"")
        }
        return try mapping.map { key, value throws(ConfigError) in
            guard let key = key.scalar?.string, let value = value.scalar?.string else {
                let name = key.scalar?.string ?? "\(key)"
                throw ConfigError("config file \(path): value of \"\(name)\" must be a string, number or boolean")
            }
            return (key, value)
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error as? YamlError {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return " line \(mark.line): \(problem)"
        case .duplicatedKeysInMapping(let duplicates, _):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return ": \(keys) given more than once"
        default:
            let firstLine = "\(error)".split(separator: "\n").first.map(String.init) ?? ""
            return " is not valid YAML: \(firstLine)"
        }
    }
}
