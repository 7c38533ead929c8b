import ShardCore

/// A forward-only scan of member rows in sample id order (``IndexReader/membersInSampleOrder()``),
/// values as stored and unvalidated (see ``MemberLocation/defect(shardSize:)``). Read the current
/// row only after ``next()`` returned true. Owned by one thread; not `Sendable`.
///
/// ```swift
/// let rows = try reader.membersInSampleOrder()
/// while try rows.next() { print(rows.sampleID, rows.location.length) }
/// ```
public struct MemberRowCursor {
    private let statement: Statement

    init(statement: Statement) { self.statement = statement }

    /// Moves to the next row; false when there is none.
    ///
    /// - Throws: `SQLiteError`.
    /// - Complexity: one step of the scan.
    public func next() throws -> Bool { try statement.step() }

    /// The row id of the current member's sample.
    public var sampleID: Int64 { statement.int64(at: 0) }

    /// Where the current member is, as stored.
    public var location: MemberLocation {
        MemberLocation(
            shardID: statement.int64(at: 2), headerOffset: statement.int64(at: 5), dataOffset: statement.int64(at: 3),
            length: statement.int64(at: 4))
    }

    /// Calls `body` with the current member's extension bytes as stored, without copying them; the
    /// buffer must not escape `body`.
    ///
    /// - Throws: what `body` throws.
    /// - Complexity: O(1) plus `body`.
    public func withExtensionBytes<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        try statement.withTextBytes(at: 1, body)
    }
}
