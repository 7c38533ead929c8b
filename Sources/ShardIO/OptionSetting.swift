/// Whose words a message uses for the library's options: the API's (`lookup 'table'`, what a
/// Swift or Python caller sets) or the command line's (`--lookup table`, what the CLI prints).
///
/// ```swift
/// error.message(.commandLine)   // "...; use --strategy mmap or pread"
/// ```
public enum MessageStyle: Sendable, Equatable {
    /// Option names and quoted values, as the library's API spells them: `strategy 'mmap'`.
    case api
    /// Command-line flags: `--strategy mmap`.
    case commandLine
}

/// An option of the library set to one of a few values, as a message mentions it ("use lookup
/// 'auto' or 'table'"): messages are written in API words with ``text(_:)`` in `.api` style, and
/// carry their settings so that the CLI can print them as flags (see ``rendering(_:in:_:)``).
///
/// ```swift
/// let use = OptionSetting(.strategy, ["mmap", "pread"])
/// use.text(.api)           // "strategy 'mmap' or 'pread'"
/// use.text(.commandLine)   // "--strategy mmap or pread"
/// ```
public struct OptionSetting: Sendable, Equatable {
    /// The options messages mention.
    public enum Option: String, Sendable, CaseIterable {
        /// The loading strategy (``LoadingStrategy``; `--strategy`).
        case strategy
        /// How positions are resolved (`Dataset.LookupMode`; `--lookup`).
        case lookup

        /// The command-line flag that sets it.
        public var flag: String { "--" + rawValue }
    }

    /// The option.
    public var option: Option
    /// The values, any one of which would do (in the order to suggest them).
    public var values: [String]

    public init(_ option: Option, _ values: [String]) {
        self.option = option
        self.values = values
    }

    /// The option with its values joined by "or": `lookup 'auto' or 'table'` or `--lookup auto or table`.
    ///
    /// - Complexity: O(values).
    public func text(_ style: MessageStyle) -> String {
        switch style {
        case .api: "\(option.rawValue) " + values.map { "'\($0)'" }.joined(separator: " or ")
        case .commandLine: "\(option.flag) " + values.joined(separator: " or ")
        }
    }

    /// `message`, written in `.api` style and mentioning `settings`, with each mention in `style`.
    ///
    /// ```swift
    /// let api = "use " + OptionSetting(.lookup, ["table"]).text(.api)   // "use lookup 'table'"
    /// OptionSetting.rendering(api, in: .commandLine, [OptionSetting(.lookup, ["table"])])   // "use --lookup table"
    /// ```
    ///
    /// - Complexity: O(message length × settings).
    public static func rendering(_ message: String, in style: MessageStyle, _ settings: [OptionSetting]) -> String {
        guard style != .api else { return message }
        var out = message
        for setting in settings {
            out = out.replacing(setting.text(.api), with: setting.text(style))
        }
        return out
    }
}
