/// How `Database.inTransaction` begins its transaction.
///
/// ```swift
/// try db.inTransaction(.deferred) { try readSnapshot(db) }
/// ```
///
/// See <https://www.sqlite.org/lang_transaction.html>.
public enum TransactionKind: Sendable {
    /// `BEGIN DEFERRED`: takes locks on first read or write. For consistent multi-query reads.
    case deferred
    /// `BEGIN IMMEDIATE`: takes the write lock at once, so the transaction never fails midway
    /// with `.busy` because another writer came first. The default: for writes.
    case immediate
    /// `BEGIN EXCLUSIVE`: like `.immediate`; in rollback-journal mode it also keeps readers out.
    case exclusive

    var beginSQL: String {
        switch self {
        case .deferred: "BEGIN DEFERRED"
        case .immediate: "BEGIN IMMEDIATE"
        case .exclusive: "BEGIN EXCLUSIVE"
        }
    }
}

extension Database {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// ```swift
    /// let sampleID = try db.inTransaction {
    ///     try insertSample.execute([.text(key), .integer(shardID)])
    ///     return db.lastInsertRowID
    /// }
    /// ```
    ///
    /// Transactions do not nest: calling this inside another one fails with SQLite's "cannot start
    /// a transaction within a transaction".
    ///
    /// - Parameters:
    ///   - kind: how to begin; `.immediate` by default.
    ///   - body: the work; its result is returned after the commit.
    /// - Throws: the error `body` threw, after rolling back (a failing rollback does not replace
    ///   it); or the `SQLiteError` of BEGIN or COMMIT. When COMMIT fails (say, a deferred foreign
    ///   key violation, or `.busy`) the transaction is rolled back before the error is thrown, so
    ///   the connection is never left inside a transaction.
    /// - Complexity: `body` plus two statements.
    public func inTransaction<T>(_ kind: TransactionKind = .immediate, _ body: () throws -> T) throws
        -> T
    {
        try cachedStatement(kind.beginSQL).execute()
        let result: T
        do {
            result = try body()
        } catch {
            rollbackIfNeeded()
            throw error
        }
        do {
            try cachedStatement("COMMIT").execute()
        } catch {
            rollbackIfNeeded()
            throw error
        }
        return result
    }

    /// Rolls back the open transaction, if SQLite did not already; errors are dropped so that the
    /// caller's own error is the one reported.
    private func rollbackIfNeeded() {
        guard !isClosed, isInTransaction else { return }
        try? cachedStatement("ROLLBACK").execute()
    }
}
