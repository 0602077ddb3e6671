/// `--print_env_template` and `--print_yaml_template`, as go-ldlm has them:
/// every setting with its help as a comment and its default as the value,
/// ready to save and edit. Both are made from `ConfigSetting`, so a new
/// setting is in them as soon as it is in the table.
///
/// A setting without a default is written commented out: an empty value is
/// not "unset" for every setting here (an empty `tls_cert` is a certificate
/// path that cannot be read), so the saved template must not give one.
enum ConfigTemplate: Equatable {
    /// `LDLM_<FLAG>=value` lines, for systemd's `EnvironmentFile=`,
    /// `docker run --env-file` or a shell (`set -a`). go-ldlm quotes the
    /// values; Docker would keep the quotes as part of the value, and no
    /// default needs them.
    case environment
    /// A file for `--config_file`, keys as the config file reads them.
    case yaml

    var text: String {
        let header: String
        switch self {
        case .environment:
            header = """
                # \(ServerFlags.versionText): every setting as an environment variable, with its default.
                # A variable commented out has no default: remove the "# " and give it a value.
                # The LDLM_HA_* variables make a replica of a set over etcd: uncomment them together.
                # Variables outrank a config file: with --config_file, keep only the lines you change.
                """
        case .yaml:
            header = """
                # \(ServerFlags.versionText): a config file (--config_file) with every setting at its default.
                # A key commented out has no default: remove the "# " and give it a value.
                # The ha_* keys make a replica of a set over etcd: uncomment them together.
                """
        }
        let entries = settings.map { setting in
            // A replica setting given alone is refused, even at its default.
            let line = setting.isReplicaSetting
                ? "# " + assignment(setting, value: setting.defaultValue)
                : setting.defaultValue.map { assignment(setting, value: $0) } ?? "# " + assignment(setting, value: nil)
            return "# \(setting.help)\n" + line
        }
        return ([header] + entries).joined(separator: "\n\n")
    }

    /// The settings the template lists: `--config_file` names the file
    /// rather than being a key in it, as go-ldlm's YAML template leaves it out.
    private var settings: [ConfigSetting] {
        ConfigSetting.allCases.filter { setting in
            !setting.isHiddenFromHelp && !(self == .yaml && setting == .configFile)
        }
    }

    private func assignment(_ setting: ConfigSetting, value: String?) -> String {
        switch self {
        case .environment: return "\(setting.environmentVariable)=\(value ?? "")"
        case .yaml: return setting.name + ":" + (value.map { " " + $0 } ?? "")
        }
    }
}
