import ShardCore
import ShardIO

/// An error of opening or reading a dataset, in the words of the library's API (option names and
/// values, not command-line flags), with its ``ErrorCode`` and the option settings its message
/// suggests, so that the CLI can print them as flags (``message(_:)`` with `.commandLine`).
///
/// ```swift
/// let error = DatasetError(
///     .invalidArgument, "the memory strategy needs the in-memory location table; use lookup 'auto' or 'table'",
///     mentioning: [OptionSetting(.lookup, ["auto", "table"])])
/// error.description              // "...; use lookup 'auto' or 'table'"
/// error.message(.commandLine)    // "...; use --lookup auto or table"
/// ```
public struct DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind, as the C ABI and Python see it.
    public var code: ErrorCode
    /// One line in API words: what failed, where, what to do.
    public var message: String
    /// The option settings ``message`` mentions (written with ``OptionSetting/text(_:)`` in `.api` style).
    public var mentions: [OptionSetting]

    public init(_ code: ErrorCode, _ message: String, mentioning mentions: [OptionSetting] = []) {
        self.code = code
        self.message = message
        self.mentions = mentions
    }

    /// ``message`` with the options it mentions in `style`.
    ///
    /// - Complexity: O(message length × mentions).
    public func message(_ style: MessageStyle) -> String {
        OptionSetting.rendering(message, in: style, mentions)
    }

    public var description: String { message }
}
