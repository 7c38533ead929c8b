// The loader's C entry points (shardstore.h, "Loading batches"): one per function, each checking
// its pointers and catching every error (``EntryPoint``).

import CShardStoreABI
import ShardCore
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

/// The handle behind a `shardstore_loader *`, in the process that made it.
///
/// - Throws: ``DatasetError`` (`.invalidArgument`) when `pointer` is NULL or the caller is a
///   forked child (its reader threads, and any lock they held, stayed in the parent).
private func loaderHandle(_ pointer: OpaquePointer?) throws -> LoaderHandle {
    guard let pointer else {
        throw DatasetError(.invalidArgument, "loader is NULL; pass a loader from shardstore_loader_open")
    }
    let handle = Unmanaged<LoaderHandle>.fromOpaque(UnsafeRawPointer(pointer)).takeUnretainedValue()
    let pid = shardstore_process_id()
    guard handle.loader.openedInProcess == pid else {
        throw DatasetError(
            .invalidArgument,
            "this loader was made in process \(handle.loader.openedInProcess), and process \(pid) is a fork of it; "
                + "make loaders after forking (in each worker process)")
    }
    return handle
}

/// `shardstore_loader_options_init`: sequential, batch size 1, auto threads and prefetch, rank 0
/// of 1, pad, native collation.
@c(shardstore_loader_options_init)
public func shardstoreLoaderOptionsInit(_ options: UnsafeMutablePointer<shardstore_loader_options>?) {
    guard let options else { return }
    options.pointee = shardstore_loader_options()
    options.pointee.struct_size = UInt32(MemoryLayout<shardstore_loader_options>.size)
    options.pointee.batch_size = 1
    options.pointee.block_size = 1
    options.pointee.window_blocks = 1
    options.pointee.world_size = 1
}

/// `shardstore_loader_open`: a loader over `dataset` at epoch 0.
///
/// - Complexity: O(1); the first `shardstore_loader_next` builds the epoch's order (O(samples)).
@c(shardstore_loader_open)
public func shardstoreLoaderOpen(
    _ dataset: OpaquePointer?, _ options: UnsafePointer<shardstore_loader_options>?,
    _ loader: UnsafeMutablePointer<OpaquePointer?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let out = try EntryPoint.required(loader, "loader")
        let made = LoaderHandle(try Loader(handle.dataset(), options: try LoaderHandle.options(options)))
        out.pointee = OpaquePointer(Unmanaged.passRetained(made).toOpaque())
    }
}

/// `shardstore_loader_close`: stops the threads and frees the loader; leaks it in a forked child.
@c(shardstore_loader_close)
public func shardstoreLoaderClose(_ loader: OpaquePointer?) {
    guard let loader else { return }
    let handle = Unmanaged<LoaderHandle>.fromOpaque(UnsafeRawPointer(loader))
    // Joining the reader threads happens outside the fork guard: they take it to read.
    guard handle.takeUnretainedValue().loader.openedInProcess == shardstore_process_id() else { return }
    handle.takeUnretainedValue().loader.close()
    EntryPoint.guarded { handle.release() }
}

/// `shardstore_loader_set_epoch`: starts `epoch` from its beginning.
@c(shardstore_loader_set_epoch)
public func shardstoreLoaderSetEpoch(
    _ loader: OpaquePointer?, _ epoch: Int64, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        guard let e = Int(exactly: epoch) else { throw SamplerError("epoch is \(epoch); epochs count from 0") }
        try handle.loader.setEpoch(e)
        handle.number = 0
    }
}

/// `shardstore_loader_count`: the batches of the current epoch.
@c(shardstore_loader_count)
public func shardstoreLoaderCount(
    _ loader: OpaquePointer?, _ batches: UnsafeMutablePointer<Int64>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        let out = try EntryPoint.required(batches, "batches")
        out.pointee = Int64(handle.loader.count)
    }
}

/// `shardstore_loader_next`: the next batch and its lease; NULL lease at the epoch's end.
///
/// - Complexity: waits for the reader threads when the batch is not ready; O(columns) here.
@c(shardstore_loader_next)
public func shardstoreLoaderNext(
    _ loader: OpaquePointer?, _ batch: UnsafeMutablePointer<shardstore_batch>?,
    _ lease: UnsafeMutablePointer<OpaquePointer?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        let out = try EntryPoint.required(batch, "batch")
        let leaseOut = try EntryPoint.required(lease, "lease")
        leaseOut.pointee = nil
        out.pointee = shardstore_batch()
        let number = handle.number
        handle.number += 1
        guard let next = try handle.loader.next() else {
            handle.number = number
            return
        }
        let part = try LoaderHandle.describe(next, number: number, into: out)
        leaseOut.pointee = OpaquePointer(Unmanaged.passRetained(LeaseHandle.make(part)).toOpaque())
    }
}

/// `shardstore_loader_state_get`: the seed, epoch, consumed position and world size.
@c(shardstore_loader_state_get)
public func shardstoreLoaderStateGet(
    _ loader: OpaquePointer?, _ state: UnsafeMutablePointer<shardstore_loader_state>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        let out = try EntryPoint.required(state, "state")
        let s = handle.loader.state
        out.pointee = shardstore_loader_state(
            seed: s.seed, epoch: Int64(s.epoch), consumed: Int64(s.consumed), world_size: Int64(s.worldSize))
    }
}

/// `shardstore_loader_restore`: continues from a saved state.
@c(shardstore_loader_restore)
public func shardstoreLoaderRestore(
    _ loader: OpaquePointer?, _ state: UnsafePointer<shardstore_loader_state>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        guard let s = state?.pointee else {
            throw DatasetError(.invalidArgument, "state is NULL; pass one from shardstore_loader_state_get")
        }
        guard let epoch = Int(exactly: s.epoch), let consumed = Int(exactly: s.consumed),
            let worldSize = Int(exactly: s.world_size)
        else { throw DatasetError(.invalidArgument, "the saved state's numbers do not fit this platform") }
        try handle.loader.restore(
            LoaderState(seed: s.seed, epoch: epoch, consumed: consumed, worldSize: worldSize))
        handle.number = 0
    }
}

/// `shardstore_loader_report`: what the loader chose, as a string to free.
@c(shardstore_loader_report)
public func shardstoreLoaderReport(
    _ loader: OpaquePointer?, _ report: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try loaderHandle(loader)
        let out = try EntryPoint.required(report, "report")
        guard let text = strdup(handle.loader.report) else {
            throw DatasetError(.outOfMemory, "no memory for the loader's report")
        }
        out.pointee = text
    }
}
