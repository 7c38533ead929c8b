import CShardStoreABI
import ShardIO
import ShardLoader
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What a `shardstore_dataset *` points to: the dataset for the current process, and the C
/// strings `shardstore_info` hands out (owned here, valid until the handle is closed).
///
/// **Fork safety.** A dataset belongs to the process that made it (``Dataset/openedInProcess``).
/// An entry point called in a forked child finds another process id and switches, once, to
/// ``Dataset/reopenedAfterFork()`` of the parent's dataset: the threads of the child that race
/// there each make one, one wins the swap, the others discard theirs. The parent's dataset is
/// never released in the child (its SQLite connections must not be closed there): it leaks.
final class DatasetHandle {
    /// The dataset for the process that last swapped it in; retained once by the handle.
    private let current: Atomic<Unmanaged<Dataset>>

    /// The number of samples (the same in every process).
    let count: Int
    /// The index path as given.
    let path: String
    /// The index path made absolute at open, for the calls that open the index again
    /// (``IndexJSON``): the caller may change directory after opening a relative path.
    let absolutePath: String
    /// The total bytes of the selected members.
    let selectionBytes: Int64
    let strategyText: UnsafeMutablePointer<CChar>
    let lookupText: UnsafeMutablePointer<CChar>
    let reasonText: UnsafeMutablePointer<CChar>
    let splitText: UnsafeMutablePointer<CChar>?
    let pathText: UnsafeMutablePointer<CChar>

    /// A handle on `dataset`, opened in this process.
    ///
    /// - Throws: ``DatasetError`` (`.outOfMemory`) when the info strings cannot be allocated.
    init(_ dataset: Dataset) throws {
        count = dataset.count
        path = dataset.path
        absolutePath = Paths.absolute(dataset.path)
        selectionBytes = dataset.selectionBytes
        let lookup: String
        switch dataset.lookup {
        case .table: lookup = "table"
        case .file: lookup = "file"
        case .statements: lookup = "statements"
        }
        var made: [UnsafeMutablePointer<CChar>] = []
        func copy(_ text: String) throws -> UnsafeMutablePointer<CChar> {
            guard let c = strdup(text) else {
                for p in made { free(p) }
                throw DatasetError(.outOfMemory, "no memory for the dataset's description (\(text.utf8.count) bytes)")
            }
            made.append(c)
            return c
        }
        strategyText = try copy(dataset.strategy.rawValue)
        lookupText = try copy(lookup)
        reasonText = try copy(dataset.choice.reason)
        splitText = try dataset.split.map { try copy($0) }
        pathText = try copy(dataset.path)
        current = Atomic(Unmanaged.passRetained(dataset))
    }

    deinit {
        free(strategyText)
        free(lookupText)
        free(reasonText)
        free(splitText)
        free(pathText)
        // Only this process's dataset is released; a parent's leaks (see the type's comment).
        let state = current.load(ordering: .acquiring)
        if state.takeUnretainedValue().openedInProcess == shardstore_process_id() { state.release() }
    }

    /// The dataset to use in the calling process, reopened once after a fork.
    ///
    /// - Complexity: O(1) (the cached process id and an atomic load) except for the first call in a child.
    @inline(__always)
    func dataset() -> Dataset {
        let pid = shardstore_process_id()
        let state = current.load(ordering: .acquiring)
        let found = state.takeUnretainedValue()
        if found.openedInProcess == pid { return found }
        return reopen(from: state, pid: pid)
    }

    private func reopen(from start: Unmanaged<Dataset>, pid: pid_t) -> Dataset {
        var state = start
        while true {
            let found = state.takeUnretainedValue()
            if found.openedInProcess == pid { return found }
            let fresh = Unmanaged.passRetained(found.reopenedAfterFork())
            let (exchanged, original) = current.compareExchange(
                expected: state, desired: fresh, ordering: .acquiringAndReleasing)
            if exchanged { return fresh.takeUnretainedValue() }
            // Another thread of this process won: ours was made here and may be released.
            fresh.release()
            state = original
        }
    }
}
