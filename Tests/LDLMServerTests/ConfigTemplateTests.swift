import XCTest

@testable import LDLMServer

final class ConfigTemplateTests: XCTestCase {
    private func template(_ flag: String) throws -> String {
        guard case .showTemplate(let text) = try resolveRequest([flag]) else {
            XCTFail("\(flag) printed no template")
            return ""
        }
        return text
    }

    /// Each entry is help comments and, last, its assignment: the ones a
    /// user would load as they are, and those commented out for a user to
    /// fill in. The assignment is split at the first `separator`.
    private func assignments(in text: String, separator: Character) -> (active: [String: String], commentedOut: Set<String>) {
        var active: [String: String] = [:]
        var commentedOut: Set<String> = []
        for entry in text.components(separatedBy: "\n\n") {
            let lines = entry.split(separator: "\n", omittingEmptySubsequences: false)
            XCTAssertTrue(lines.dropLast().allSatisfy { $0.hasPrefix("# ") }, "an entry's help is not all comments: \(entry)")
            guard let last = lines.last else { continue }
            let isCommentedOut = last.hasPrefix("# ")
            let assignment = isCommentedOut ? last.dropFirst(2) : last
            guard let split = assignment.firstIndex(of: separator) else {
                XCTAssertTrue(isCommentedOut, "neither a comment nor an assignment: \(last)")
                continue
            }
            let name = String(assignment[..<split])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                XCTAssertTrue(isCommentedOut, "not an assignment: \(last)")
                continue
            }
            if isCommentedOut {
                commentedOut.insert(name)
            } else {
                active[name] = String(assignment[assignment.index(after: split)...].drop { $0 == " " })
            }
        }
        return (active, commentedOut)
    }

    func testEnvironmentTemplateLoadedAsIsGivesTheDefaults() throws {
        for flag in ["--print_env_template", "-print_env_template"] {
            let text = try template(flag)
            let (active, _) = assignments(in: text, separator: "=")
            XCTAssertFalse(active.isEmpty, text)
            XCTAssertEqual(try resolveRequest([], environment: active), .run(ServerConfig()), "\(active)")
        }
    }

    func testYAMLTemplateAsConfigFileGivesTheDefaults() throws {
        for flag in ["--print_yaml_template", "-print_yaml_template"] {
            let text = try template(flag)
            XCTAssertEqual(
                try resolveRequest(["--config_file", "/ldlm.yaml"], files: ["/ldlm.yaml": text]),
                .run(ServerConfig())
            )
            let read = try ConfigFile.parse(text, path: "/ldlm.yaml")
            XCTAssertEqual(read, assignmentsBySetting(assignments(in: text, separator: ":").active), "the file reads what it shows")
        }
    }

    func testEverySettingAppearsInBothTemplatesAndTheHiddenOneInNeither() throws {
        let environment = assignments(in: try template("--print_env_template"), separator: "=")
        let yaml = assignments(in: try template("--print_yaml_template"), separator: ":")
        for setting in ConfigSetting.allCases {
            let inEnvironment = environment.active[setting.environmentVariable] ?? (environment.commentedOut.contains(setting.environmentVariable) ? "" : nil)
            let inYAML = yaml.active[setting.name] ?? (yaml.commentedOut.contains(setting.name) ? "" : nil)
            if setting.isHiddenFromHelp {
                XCTAssertNil(inEnvironment, "\(setting.name) is offered in the environment template")
                XCTAssertNil(inYAML, "\(setting.name) is offered in the YAML template")
                continue
            }
            // A default is given to load; a setting without one waits, commented
            // out, for a value, as do the replica settings, which go together.
            let loaded = setting.isReplicaSetting ? "" : setting.defaultValue ?? ""
            XCTAssertEqual(inEnvironment, loaded, "\(setting.environmentVariable)")
            // The config file is named by a flag or LDLM_CONFIG_FILE, never by itself.
            if setting != .configFile {
                XCTAssertEqual(inYAML, loaded, "\(setting.name)")
            }
        }
    }

    func testAKeyCommentedOutTakesEffectOnceUncommented() throws {
        let text = try template("--print_yaml_template")
        let edited = text.replacingOccurrences(of: "# password:", with: "password: s3cret")
            .replacingOccurrences(of: "# state_file:", with: "state_file: /var/lib/ldlm/state")
        XCTAssertEqual(
            try resolveRequest(["-c", "/ldlm.yaml"], files: ["/ldlm.yaml": edited]),
            .run(configWith {
                $0.password = "s3cret"
                $0.stateFile = "/var/lib/ldlm/state"
            })
        )
    }

    func testHelpShowsEachDefault() throws {
        guard case .showHelp(let text) = try resolveRequest(["--help"]) else {
            return XCTFail("no help")
        }
        let usage = text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for setting in ConfigSetting.allCases {
            guard let value = setting.defaultValue else { continue }
            XCTAssertTrue(usage.contains("\(setting.help) (default \(value))"), "help lacks the default of --\(setting.name)")
        }
        XCTAssertTrue(usage.contains("--print_env_template"), usage)
        XCTAssertTrue(usage.contains("--print_yaml_template"), usage)
    }

    private func assignmentsBySetting(_ assignments: [String: String]) -> [ConfigSetting: String] {
        Dictionary(uniqueKeysWithValues: assignments.compactMap { name, value in
            ConfigSetting(rawValue: name).map { ($0, value) }
        })
    }
}
