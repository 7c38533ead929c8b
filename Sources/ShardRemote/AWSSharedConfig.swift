import ShardIO

#if canImport(Glibc)
    import Glibc
#endif

/// The AWS shared files as the AWS tools read them: the credentials file (`~/.aws/credentials`,
/// or `AWS_SHARED_CREDENTIALS_FILE`), whose sections are profile names, and the config file
/// (`~/.aws/config`, or `AWS_CONFIG_FILE`), whose sections are `[default]` and `[profile NAME]`.
///
/// Only the INI subset those files use: `[section]` lines, `key = value` lines (names compared in
/// lower case), whole-line comments starting with `#` or `;`, and indented continuation lines
/// (nested settings such as `s3 =`), which are skipped.
///
/// ```swift
/// let files = try AWSSharedConfig.load(environment: ["HOME": "/home/me"])
/// files.value("aws_access_key_id", profile: "default")
/// ```
public struct AWSSharedConfig: Sendable, Equatable {
    /// Settings from the credentials file, by profile name.
    public var credentialsFile: [String: [String: String]]
    /// Settings from the config file, by profile name (`[profile x]` read as `x`).
    public var configFile: [String: [String: String]]

    /// Makes a configuration from parsed sections.
    public init(credentialsFile: [String: [String: String]] = [:], configFile: [String: [String: String]] = [:]) {
        self.credentialsFile = credentialsFile
        self.configFile = configFile
    }

    /// Reads both files; a file that does not exist counts as empty.
    ///
    /// - Parameter environment: `HOME`, `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`.
    /// - Throws: ``RemoteError`` (`.configuration`) when a file exists but cannot be read.
    public static func load(environment: [String: String]) throws(RemoteError) -> AWSSharedConfig {
        let home = environment["HOME"] ?? ""
        func path(_ variable: String, _ fallback: String) -> String {
            let p = environment[variable] ?? (home + "/.aws/" + fallback)
            return p.hasPrefix("~/") ? home + p.dropFirst() : p
        }
        let credentials = try readSections(path("AWS_SHARED_CREDENTIALS_FILE", "credentials"), profilePrefix: false)
        let config = try readSections(path("AWS_CONFIG_FILE", "config"), profilePrefix: true)
        return AWSSharedConfig(credentialsFile: credentials, configFile: config)
    }

    /// A profile's setting: the credentials file first, then the config file.
    public func value(_ name: String, profile: String) -> String? {
        credentialsFile[profile]?[name] ?? configFile[profile]?[name]
    }

    /// Whether either file has a section for `profile`.
    public func hasProfile(_ profile: String) -> Bool {
        credentialsFile[profile] != nil || configFile[profile] != nil
    }

    private static func readSections(_ path: String, profilePrefix: Bool) throws(RemoteError) -> [String: [String:
        String]]
    {
        let file: ReadOnlyFile
        do { file = try ReadOnlyFile(path: path) } catch {
            if error.errno == ENOENT { return [:] }
            throw RemoteError(
                .configuration("cannot read the AWS file: \(error)"), url: path, operation: "read configuration")
        }
        let bytes: [UInt8]
        do { bytes = try file.read(count: Int(min(file.byteCount, 1 << 24)), at: 0) } catch {
            throw RemoteError(
                .configuration("cannot read the AWS file: \(error)"), url: path, operation: "read configuration")
        }
        return parse(String(decoding: bytes, as: UTF8.self), profilePrefix: profilePrefix)
    }

    /// Parses INI text into sections. With `profilePrefix` (the config file), `[profile x]` is
    /// section `x`, `[default]` is `default`, and other kinds of section (`[sso-session x]`,
    /// `[services x]`) are left out.
    ///
    /// - Complexity: O(n) in the length of `text`.
    public static func parse(_ text: String, profilePrefix: Bool) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let indented = rawLine.first == " " || rawLine.first == "\t"
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") || indented { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    current = nil
                    continue
                }
                var name = line.dropFirst().dropLast().trimmingWhitespace()
                if profilePrefix {
                    if name.hasPrefix("profile ") || name.hasPrefix("profile\t") {
                        name = name.dropFirst(8).trimmingWhitespace()
                    } else if name != "default" {
                        current = nil
                        continue
                    }
                }
                current = String(name)
                if sections[String(name)] == nil { sections[String(name)] = [:] }
                continue
            }
            guard let section = current, let eq = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            let key = line[..<eq].trimmingWhitespace().lowercased()
            let value = line[line.index(after: eq)...].trimmingWhitespace()
            sections[section, default: [:]][key] = String(value)
        }
        return sections
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (and a carriage return).
    func trimmingWhitespace() -> Substring {
        let s = Substring(self)
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = s.firstIndex(where: { !isSpace($0) }) else { return s[s.endIndex...] }
        let last = s.lastIndex(where: { !isSpace($0) })!
        return s[first...last]
    }
}
