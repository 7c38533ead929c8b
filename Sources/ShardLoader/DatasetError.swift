import ShardCore

/// An error of opening or reading a dataset, in the words of the library's API (option names and
/// values, not command-line flags), with its ``ErrorCode``.
///
/// ```swift
/// // "the memory strategy needs the in-memory location table; set lookup to 'auto' or 'table', or choose another strategy"
/// ```
public struct DatasetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind, as the C ABI and Python see it.
    public var code: ErrorCode
    /// One line: what failed, where, what to do.
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
