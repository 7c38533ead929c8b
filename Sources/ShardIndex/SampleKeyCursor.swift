import ShardCore

/// A forward-only scan of samples' row ids and keys (``IndexReader/sampleKeys(inSplit:)``).
/// Read the current row only after ``next()`` returned true. Owned by one thread; not `Sendable`.
///
/// ```swift
/// let keys = try reader.sampleKeys(inSplit: nil)
/// while try keys.next() { print(keys.sampleID) }
/// ```
public struct SampleKeyCursor {
    private let statement: Statement

    init(statement: Statement) { self.statement = statement }

    /// Moves to the next row; false when there is none.
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one step of the scan.
    public func next() throws -> Bool { try statement.step() }

    /// The current sample's row id (its global index).
    public var sampleID: Int64 { statement.int64(at: 0) }

    /// Calls `body` with the current sample's key bytes as stored, without copying them; the
    /// buffer must not escape `body`.
    ///
    /// - Throws: what `body` throws.
    /// - Complexity: O(1) plus `body`.
    public func withKeyBytes<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try statement.withTextBytes(at: 1, body)
    }
}
