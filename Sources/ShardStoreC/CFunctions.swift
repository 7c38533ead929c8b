// The C entry points of libShardStoreC.so, one per function of shardstore.h (the contract: read
// it for each function's meaning). Each checks its pointers and catches every error, so that only
// a status and a message cross the ABI (``EntryPoint``).

import CShardStoreABI
import ShardCore
import ShardLoader

#if canImport(Glibc)
    import Glibc
#endif

// MARK: Versions

/// `shardstore_abi_version`: `SHARDSTORE_ABI_VERSION` of this library.
///
/// ```c
/// assert(shardstore_abi_version() == SHARDSTORE_ABI_VERSION);
/// ```
@c(shardstore_abi_version)
public func shardstoreABIVersion() -> UInt32 { UInt32(SHARDSTORE_ABI_VERSION) }

/// `shardstore_version`: the library's version (`"0.1.0"`), a static string.
@c(shardstore_version)
public func shardstoreVersion() -> UnsafePointer<CChar> {
    // A literal (NUL-terminated, in read-only data), not a lazily made global: no first-use
    // initialization that a fork could catch half done. Equal to ShardStoreVersion.string (tested).
    let text: StaticString = "0.1.0"
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

// MARK: Strings

/// `shardstore_string_free`: frees a string the library returned; NULL is ignored.
@c(shardstore_string_free)
public func shardstoreStringFree(_ string: UnsafeMutablePointer<CChar>?) { free(string) }

// MARK: Opening and closing

/// `shardstore_open_options_init`: the defaults (all zero but `struct_size` and
/// `verify_headers = 1`).
@c(shardstore_open_options_init)
public func shardstoreOpenOptionsInit(_ options: UnsafeMutablePointer<shardstore_open_options>?) {
    guard let options else { return }
    options.pointee = shardstore_open_options()
    options.pointee.struct_size = UInt32(MemoryLayout<shardstore_open_options>.size)
    options.pointee.verify_headers = 1
}

/// `shardstore_open`: opens the index at `indexPath` and stores the dataset in `*dataset`.
///
/// - Complexity: that of ``Dataset/init(index:split:extensions:strategy:options:)``.
@c(shardstore_open)
public func shardstoreOpen(
    _ indexPath: UnsafePointer<CChar>?, _ options: UnsafePointer<shardstore_open_options>?,
    _ dataset: UnsafeMutablePointer<OpaquePointer?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let out = try EntryPoint.required(dataset, "dataset")
        let handle = try DatasetHandle(try OpenRequest(path: indexPath, options: options).open())
        out.pointee = OpaquePointer(Unmanaged.passRetained(handle).toOpaque())
    }
}

/// `shardstore_close`: closes the dataset; leases taken from it stay valid. NULL is ignored.
@c(shardstore_close)
public func shardstoreClose(_ dataset: OpaquePointer?) {
    guard let dataset else { return }
    EntryPoint.guarded { Unmanaged<DatasetHandle>.fromOpaque(UnsafeRawPointer(dataset)).release() }
}

// MARK: Facts

/// `shardstore_count`: the number of samples; -1 when `dataset` is NULL.
@c(shardstore_count)
public func shardstoreCount(_ dataset: OpaquePointer?) -> Int64 {
    guard let handle = try? EntryPoint.handle(dataset) else { return -1 }
    return Int64(handle.count)
}

/// `shardstore_info`: fills `*info` (whose `struct_size` the caller set).
@c(shardstore_info)
public func shardstoreInfo(
    _ dataset: OpaquePointer?, _ info: UnsafeMutablePointer<shardstore_dataset_info>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let info = try EntryPoint.required(info, "info")
        let size = Int(info.pointee.struct_size)
        guard size >= MemoryLayout<shardstore_dataset_info>.size else {
            throw DatasetError(
                .invalidArgument,
                "info->struct_size is \(size), less than the \(MemoryLayout<shardstore_dataset_info>.size) bytes of shardstore_dataset_info in ABI version \(SHARDSTORE_ABI_VERSION); set it to sizeof(shardstore_dataset_info)"
            )
        }
        info.pointee.count = Int64(handle.count)
        info.pointee.strategy = UnsafePointer(handle.strategyText)
        info.pointee.lookup = UnsafePointer(handle.lookupText)
        info.pointee.reason = UnsafePointer(handle.reasonText)
        info.pointee.selection_bytes = handle.selectionBytes
        info.pointee.split = handle.splitText.map { UnsafePointer($0) }
        info.pointee.index_path = UnsafePointer(handle.pathText)
    }
}

/// `shardstore_splits_json`: the index's splits as a JSON array, to free with
/// `shardstore_string_free`.
@c(shardstore_splits_json)
public func shardstoreSplitsJSON(
    _ dataset: OpaquePointer?, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    storeJSON(dataset, json, error, IndexJSON.splits(index:))
}

/// `shardstore_metadata_json`: the index's metadata as a JSON object, to free with
/// `shardstore_string_free`.
@c(shardstore_metadata_json)
public func shardstoreMetadataJSON(
    _ dataset: OpaquePointer?, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    storeJSON(dataset, json, error, IndexJSON.metadata(index:))
}

/// Stores in `*json` a `malloc`ed copy of the text `make` gives for the dataset's index path
/// (absolute: the caller may have changed directory since it opened a relative one).
private func storeJSON(
    _ dataset: OpaquePointer?, _ json: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ make: (String) throws -> String
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let out = try EntryPoint.required(json, "json")
        let text = try make(handle.absolutePath)
        guard let copy = strdup(text) else {
            throw DatasetError(.outOfMemory, "no memory for a JSON text of \(text.utf8.count) bytes")
        }
        out.pointee = copy
    }
}

// MARK: Lookups

/// `shardstore_position`: the position of the sample with key `key` (`keyLength` bytes).
///
/// - Complexity: that of ``Dataset/position(forKey:)``.
@c(shardstore_position)
public func shardstorePosition(
    _ dataset: OpaquePointer?, _ key: UnsafePointer<UInt8>?, _ keyLength: Int,
    _ position: UnsafeMutablePointer<Int64>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let out = try EntryPoint.required(position, "position")
        guard key != nil || keyLength == 0 else {
            throw DatasetError(.invalidArgument, "key is NULL but key_length is \(UInt(bitPattern: keyLength))")
        }
        guard keyLength >= 0 else {
            throw DatasetError(.invalidArgument, "key_length is \(UInt(bitPattern: keyLength)), more than any key")
        }
        let bytes = UnsafeBufferPointer(start: key, count: keyLength)
        out.pointee = Int64(try handle.dataset().position(forKey: SampleKey(bytes: bytes)))
    }
}

/// `shardstore_storage_order`: fills `positions[0 ..< count]` with the positions in storage order.
///
/// - Complexity: that of ``Dataset/storageOrder()``.
@c(shardstore_storage_order)
public func shardstoreStorageOrder(
    _ dataset: OpaquePointer?, _ positions: UnsafeMutablePointer<Int64>?, _ capacity: Int,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        // A size_t above Int.max arrives negative here: it is large enough.
        guard capacity < 0 || capacity >= handle.count else {
            throw DatasetError(
                .bufferTooSmall,
                "positions holds \(capacity) positions but the dataset has \(handle.count) samples; pass an array of shardstore_count() positions"
            )
        }
        guard handle.count == 0 || positions != nil else {
            throw DatasetError(.invalidArgument, "positions is NULL; pass an array of shardstore_count() positions")
        }
        for (i, p) in handle.dataset().storageOrder().enumerated() { positions![i] = Int64(p) }
    }
}

// MARK: Reading

/// `shardstore_get`: the sample at `position`, leased.
///
/// - Complexity: that of ``Dataset/withKeptSample(at:_:)`` plus O(members).
@c(shardstore_get)
public func shardstoreGet(
    _ dataset: OpaquePointer?, _ position: Int64, _ sample: UnsafeMutablePointer<shardstore_sample>?,
    _ lease: UnsafeMutablePointer<OpaquePointer?>?, _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let sample = try EntryPoint.required(sample, "sample")
        let out = try EntryPoint.required(lease, "lease")
        var part: LeaseHandle.Part?
        try handle.dataset().visitKeptSample(at: Int(position), window: nil) { view, keeper in
            part = try LeaseHandle.describe(view, keeper: keeper, into: sample)
        }
        guard let part else {
            throw DatasetError(
                .internal, "position \(position): the read called back with no sample; please report this")
        }
        out.pointee = OpaquePointer(Unmanaged.passRetained(LeaseHandle.make(part)).toOpaque())
    }
}

/// `shardstore_get_batch`: the samples at `positions[0 ..< count]`, under one lease.
///
/// - Complexity: `count` times that of ``Dataset/withKeptSample(at:_:)`` plus O(members).
@c(shardstore_get_batch)
public func shardstoreGetBatch(
    _ dataset: OpaquePointer?, _ positions: UnsafePointer<Int64>?, _ count: Int,
    _ samples: UnsafeMutablePointer<shardstore_sample>?, _ lease: UnsafeMutablePointer<OpaquePointer?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let out = try EntryPoint.required(lease, "lease")
        guard count >= 0 else {
            throw DatasetError(
                .invalidArgument, "count is \(UInt(bitPattern: count)), more positions than memory can hold")
        }
        // Nothing to read: no lease (releasing NULL is a no-op).
        guard count > 0 else {
            out.pointee = nil
            return
        }
        guard let positions else { throw DatasetError(.invalidArgument, "positions is NULL; pass count positions") }
        let samples = try EntryPoint.required(samples, "samples")
        let ds = handle.dataset()
        var parts: [LeaseHandle.Part] = []
        parts.reserveCapacity(count)
        // Remote shards: the batch's range requests go out together, many in flight.
        let window = ds.fetchWindow(
            UnsafeBufferPointer(start: positions, count: count).lazy.map { Int($0) },
            requestsInFlight: ds.remoteRequestsInFlight)
        do {
            for i in 0..<count {
                do {
                    try ds.visitKeptSample(at: Int(positions[i]), window: window) { view, keeper in
                        parts.append(try LeaseHandle.describe(view, keeper: keeper, into: samples + i))
                    }
                } catch {
                    throw DatasetError(
                        ErrorCode(classifying: error), "batch item \(i) (position \(positions[i])): \(error)")
                }
            }
        } catch {
            for part in parts { free(part.block) }
            throw error
        }
        out.pointee = OpaquePointer(Unmanaged.passRetained(LeaseHandle.make(parts)).toOpaque())
    }
}

/// `shardstore_get_into`: the sample at `position`, described in the caller's arrays, its bytes
/// kept by the lease in `*keeper` (reused when it already keeps them, else replaced by a new one).
///
/// ```c
/// shardstore_member members[64]; char text[4096]; shardstore_lease *keeper = NULL;
/// shardstore_get_into(ds, 3, &sample, members, 64, text, sizeof text, &keeper, &error);
/// ```
///
/// - Complexity: that of ``Dataset/withKeptSample(at:_:)`` plus O(members); no allocation when
///   `*keeper` already keeps the sample's bytes.
@c(shardstore_get_into)
public func shardstoreGetInto(
    _ dataset: OpaquePointer?, _ position: Int64, _ sample: UnsafeMutablePointer<shardstore_sample>?,
    _ members: UnsafeMutablePointer<shardstore_member>?, _ memberCapacity: Int, _ text: UnsafeMutablePointer<CChar>?,
    _ textCapacity: Int, _ keeper: UnsafeMutablePointer<OpaquePointer?>?,
    _ error: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
) -> shardstore_status {
    EntryPoint.run(error) {
        let handle = try EntryPoint.handle(dataset)
        let sample = try EntryPoint.required(sample, "sample")
        let out = try EntryPoint.required(keeper, "keeper")
        var kept: AnyObject?
        try handle.dataset().visitKeptSample(at: Int(position), window: nil) { view, owner in
            try LeaseHandle.describe(
                view, members: members, memberCapacity: memberCapacity, text: UnsafeMutableRawPointer(text),
                textCapacity: textCapacity, into: sample)
            // No members: nothing to keep (a source may still name its storage).
            if view.count > 0 { kept = owner }
        }
        guard let kept else { return }
        if let current = out.pointee, LeaseHandle.keepsOnly(current, kept) { return }
        out.pointee = OpaquePointer(Unmanaged.passRetained(LeaseHandle.make((kept, nil))).toOpaque())
    }
}

/// `shardstore_lease_release`: releases a lease. NULL is ignored.
@c(shardstore_lease_release)
public func shardstoreLeaseRelease(_ lease: OpaquePointer?) {
    guard let lease else { return }
    EntryPoint.guarded { LeaseHandle.release(lease) }
}
