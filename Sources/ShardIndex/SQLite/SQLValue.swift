/// A value as SQLite stores it: one case per storage class.
///
/// Literals work where an `SQLValue` is expected:
///
/// ```swift
/// try db.cachedStatement("INSERT INTO t(n, s, r) VALUES (?, ?, ?)").execute([42, "key", 0.5])
/// let n = try db.scalarInt("SELECT count(*) FROM t WHERE s = ?", "key")
/// ```
///
/// `text` holds a Swift `String`, which cannot carry invalid UTF-8: read keys that may hold
/// arbitrary bytes with `Statement.textBytes(at:)` and bind them with `bind(textBytes:at:)`.
public enum SQLValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// A 64-bit signed integer.
    case integer(Int64)
    /// An IEEE 754 double.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// Bytes, stored as a BLOB.
    case blob([UInt8])
}

extension SQLValue: ExpressibleByIntegerLiteral {
    /// `42` as `.integer(42)`.
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

extension SQLValue: ExpressibleByFloatLiteral {
    /// `0.5` as `.real(0.5)`.
    public init(floatLiteral value: Double) { self = .real(value) }
}

extension SQLValue: ExpressibleByStringLiteral {
    /// `"key"` as `.text("key")`.
    public init(stringLiteral value: String) { self = .text(value) }
}
