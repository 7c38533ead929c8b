// The ShardStore library: import this one module to ingest shards, query an index and read samples.
//
//     import ShardStore
//     let report = try Ingest.run(index: "ds/index.sqlite", shards: ["ds/*.tar"])
//     let dataset = try Dataset(index: "ds/index.sqlite")
//     let sample = try dataset[0]
@_exported import ShardCompression
@_exported import ShardCore
@_exported import ShardExport
@_exported import ShardIO
@_exported import ShardIndex
@_exported import ShardIngest
@_exported import ShardLoader
@_exported import ShardRemote
