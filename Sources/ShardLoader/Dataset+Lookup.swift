import ShardCore
import ShardIndex

/// The index questions a dataset asks when it opens and on its statement path (no location
/// table, no usable location file slot), with their checks.
extension Dataset {
    /// Throws unless every extension in `wanted` (nil: no restriction) is among `found`.
    ///
    /// - Throws: ``DatasetError`` (``ErrorCode/unknownExtension``) naming the missing extensions
    ///   and listing those found.
    static func checkExtensions(_ wanted: [String]?, found: [String]) throws {
        guard let wanted else { return }
        let missing = wanted.filter { !found.contains($0) }
        guard missing.isEmpty else {
            throw DatasetError(
                .unknownExtension,
                "no member has extension \(missing.map { "'.\(MessageText.escaped($0))'" }.joined(separator: ", ")) (extensions: \(found.sorted().map { "." + MessageText.escaped($0) }.joined(separator: ", ")))"
            )
        }
    }

    /// ``checkExtensions(_:found:)`` against the members of the index `reader` reads; the full
    /// list of extensions is read only when one is missing.
    static func checkExtensions(_ wanted: [String], reader: IndexReader) throws {
        var found: [String] = []
        for ext in wanted where try reader.hasMember(withExtension: ext) { found.append(ext) }
        if found.count < wanted.count { try checkExtensions(wanted, found: try reader.distinctExtensions()) }
    }

    /// The error for a position the index counted but has no sample at: it changed meanwhile.
    static func noSample(at position: Int) -> IndexError {
        IndexError.invalidArgument(
            "the index has no sample at position \(position) although it counted more; was it changed while being read?"
        )
    }

    /// The key, global index and members of the sample at `position`, each member row validated
    /// (``MemberLocation/defect(shardSize:)``), in archive order.
    ///
    /// - Throws: ``IndexRowError`` for a damaged row; `SQLiteError`; `IndexError`.
    static func queryMembers(
        _ reader: IndexReader, position: Int, splitID: Int64?, extensions: [String]?, shards: [ShardRecord],
        shardNumbers: [Int64: Int], indexPath: String
    ) throws -> (key: [UInt8], index: Int, members: [MemberRecord]) {
        guard let (id, key) = try reader.sampleHead(atPosition: position, splitID: splitID) else {
            throw noSample(at: position)
        }
        var members = try reader.memberRows(ofSample: id, extensions: extensions)
        for member in members {
            let shardSize = shardNumbers[member.location.shardID].map { shards[$0].tarSize }
            if let defect = member.location.defect(shardSize: shardSize) {
                throw IndexRowError(
                    indexPath: indexPath, sample: id, key: SampleKey(bytes: key), ext: member.ext, defect: defect)
            }
        }
        members.sort { ($0.location.shardID, $0.location.dataOffset) < ($1.location.shardID, $1.location.dataOffset) }
        return (key, Int(id), members)
    }
}
