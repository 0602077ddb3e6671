/// go-ldlm takes its flags with Go's `flag` syntax, which ArgumentParser reads
/// differently in a few places. This pass checks flag names as Go does and
/// respells what ArgumentParser would misread, so that it then reads the
/// command line as Go would:
/// - `-abc` is one flag name in Go, never `-a -b -c`: an unknown name is
///   refused here, not read as grouped short flags (or as `-h`, help).
/// - One or two dashes mean the same in Go; ArgumentParser takes a one-letter
///   name only after one dash, and drops an empty value only after two
///   (`--password=` would take the next argument as the password).
/// - A boolean flag alone is `true`; the argument after it is never its value.
/// - The argument after any other flag is its value, whatever it looks like
///   (`--password -x`, `---x`, `--`): values are passed on attached with `=`.
/// - `-help` is help, not the short flags `-h -e -l -p`.
enum GoCommandLine {
    private enum Arity {
        /// `--version` and the templates: no value, and not a setting.
        case action
        case value, bool, help
    }

    private struct FlagArgument {
        let dashes: Int
        let name: Substring
        var value: Substring?

        init(_ argument: String) {
            dashes = argument.prefix { $0 == "-" }.count
            let body = argument.dropFirst(min(dashes, 2))
            name = body.prefix { $0 != "=" }
            value = name.endIndex < body.endIndex ? body[body.index(after: name.endIndex)...] : nil
        }

        var spelledForArgumentParser: String {
            let singleDash = dashes == 2 && (name.count == 1 || value?.isEmpty == true)
            let prefix = singleDash ? "-" : String(repeating: "-", count: dashes)
            return prefix + name + (value.map { "=" + $0 } ?? "")
        }
    }

    static func normalize(_ arguments: [String]) throws(ConfigError) -> [String] {
        var normalized: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
                // A positional argument is for ArgumentParser to collect; after
                // `--` every argument is positional.
                normalized.append(argument)
                if argument == "--" {
                    normalized += arguments[index...]
                    index = arguments.endIndex
                }
                continue
            }
            let flag = FlagArgument(argument)
            switch try arity(of: flag) {
            case .help:
                // ArgumentParser matches `-help` only after failing to read it as
                // `-h -e -l -p`, and `-l` wants a value.
                normalized.append("--help")
            case .action:
                normalized.append(flag.spelledForArgumentParser)
            case .bool:
                var flag = flag
                flag.value = flag.value ?? "true"
                normalized.append(flag.spelledForArgumentParser)
            case .value:
                var flag = flag
                if flag.value == nil {
                    guard index < arguments.endIndex else {
                        throw ConfigError("flag \(described(flag.name)) needs a value")
                    }
                    flag.value = arguments[index][...]
                    index += 1
                }
                normalized.append(flag.spelledForArgumentParser)
            }
        }
        return normalized
    }

    private static func arity(of flag: FlagArgument) throws(ConfigError) -> Arity {
        switch flag.name {
        case "h", "help": return .help
        case "version", "print_env_template", "print_yaml_template": return .action
        default: break
        }
        if let setting = ConfigSetting.named(flag.name) {
            return setting.kind == .bool ? .bool : .value
        }
        throw ConfigError("unknown flag --\(flag.name) (see --help)")
    }

    /// `--name`, or `-x (--name)` for a one-letter name.
    private static func described(_ name: Substring) -> String {
        guard name.count == 1, let setting = ConfigSetting.named(name) else {
            return "--\(name)"
        }
        return "-\(name) (--\(setting.name))"
    }
}
