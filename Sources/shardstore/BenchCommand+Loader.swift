import ArgumentParser
import ShardStore
import Synchronization

/// `bench --loader`: one epoch through the data loader, each batch hashed as it is returned.
extension BenchCommand {
    /// The loader's options that were given, as flags, in the order of the synopsis.
    var loaderOnlyFlags: [String] {
        var given: [String] = []
        if batchSize != nil { given.append("--batch-size") }
        if shuffle { given.append("--shuffle") }
        if localityShuffle != nil { given.append("--locality-shuffle") }
        if epoch != nil { given.append("--epoch") }
        if prefetch != nil { given.append("--prefetch") }
        if dropLast { given.append("--drop-last") }
        if collate != nil { given.append("--collate") }
        return given
    }

    /// Checks `--loader` against the other modes, and the options that only go with it.
    func validateLoaderOptions() throws {
        guard loader else {
            if let flag = loaderOnlyFlags.first { throw ValidationError("\(flag) needs --loader.") }
            return
        }
        let others = [(random != nil, "--random"), (indices != nil, "--indices"), (sequential, "--sequential")]
        if let other = others.first(where: { $0.0 }) {
            throw ValidationError(
                "--loader cannot go with \(other.1): the loader reads a whole epoch, in order or shuffled (--shuffle, --locality-shuffle)."
            )
        }
        guard let batchSize else {
            throw ValidationError("--loader needs --batch-size B, the samples per batch (such as 256).")
        }
        if batchSize < 1 { throw ValidationError("--batch-size needs a positive count, got \(batchSize).") }
        if batchSize > CLILimits.maxBatches {
            throw ValidationError("Please give --batch-size at most \(CLILimits.maxBatches), got \(batchSize).")
        }
        if let prefetch, prefetch < 1 {
            throw ValidationError(
                "--prefetch needs a positive count of batches, got \(prefetch); leave it out for auto (twice the threads)."
            )
        }
        if let prefetch, prefetch > CLILimits.maxBatches {
            throw ValidationError("Please give --prefetch at most \(CLILimits.maxBatches), got \(prefetch).")
        }
        if let epoch, epoch < 0 { throw ValidationError("--epoch counts from 0, got \(epoch).") }
        if shuffle, localityShuffle != nil {
            throw ValidationError("--shuffle and --locality-shuffle cannot go together; give one of them.")
        }
        _ = try sampleOrder()
    }

    /// The order `--shuffle` or `--locality-shuffle BLOCK[,WINDOW]` asks for; sequential without.
    func sampleOrder() throws -> SampleOrder {
        if shuffle { return .shuffle }
        guard let text = localityShuffle else { return .sequential }
        let numbers = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard numbers.count <= 2, let block = numbers[0], block >= 1, let window = numbers.count == 2 ? numbers[1] : 1,
            window >= 1
        else {
            throw ValidationError(
                "--locality-shuffle takes BLOCK or BLOCK,WINDOW, positive whole numbers (samples a block, blocks a window) such as 1000 or 1000,8; got '\(text)'."
            )
        }
        return .localityShuffle(blockSize: block, windowBlocks: window)
    }

    /// Makes the loader, reads epoch `--epoch` through it and prints the figures.
    ///
    /// - Parameter opening: when opening the dataset started (`open_s` runs to the loader made).
    func runLoader(_ dataset: Dataset, opening: ContinuousClock.Instant) throws {
        let clock = ContinuousClock()
        var options = LoaderOptions(batchSize: batchSize ?? 1)
        options.order = try sampleOrder()
        options.seed = seed
        options.dropLast = dropLast
        options.threads = threads
        options.prefetch = prefetch
        options.collate = collate ?? .native
        // Each batch is hashed on its reader thread; the consumer joins the hashes in order.
        let hashes = BatchHashes()
        options.map = { batch in
            var part = Checksummer.Result()
            Checksummer.add(batch, to: &part)
            hashes.put(part, for: batch)
            return batch
        }
        let loader = try Loader(dataset, options: options)
        let openSeconds = (clock.now - opening).seconds
        if read.verbose { Terminal.stderrLine("strategy: \(dataset.choice.reason(.commandLine))") }

        let started = clock.now
        try loader.setEpoch(epoch ?? 0)
        var result = Checksummer.Result()
        var batches = 0
        var samples = 0
        var firstBatchSeconds: Double?
        while let batch = try loader.next() {
            if firstBatchSeconds == nil { firstBatchSeconds = (clock.now - started).seconds }
            let part = hashes.take(for: batch)
            result = result.joined(part)
            batches += 1
            samples += batch.count
        }
        let runSeconds = max((clock.now - started).seconds, 1e-9)
        let choice = loader.choice
        let report = loader.report
        loader.close()
        let rss = peakRSSMebibytes()
        let mbPerSecond = Double(result.bytes) / runSeconds / 1e6

        if json {
            var o = JSONObject()
            o.add("tool", string: "shardstore")
            o.add("mode", string: "loader")
            o.add(dataset.choice, dataset.lookup)
            o.add("order", string: orderName(options.order))
            if case .localityShuffle(let block, let window) = options.order {
                o.add("block_size", int: block)
                o.add("window_blocks", int: window)
            }
            o.add("seed", int: seed)
            o.add("epoch", int: epoch ?? 0)
            o.add("batch_size", int: options.batchSize)
            o.add("drop_last", bool: dropLast)
            o.add("collate", string: options.collate.rawValue)
            o.add("batches", int: batches)
            o.add("samples", int: samples)
            o.add("threads", int: choice.threads)
            o.add("prefetch", int: choice.prefetch)
            o.add("loader", string: report)
            o.add("open_s", Format.fixed(openSeconds, 4))
            o.add("run_s", Format.fixed(runSeconds, 4))
            o.add("first_batch_s", firstBatchSeconds.map { Format.fixed($0, 4) } ?? "null")
            o.add("samples_per_s", Format.fixed(Double(samples) / runSeconds, 1))
            o.add("batches_per_s", Format.fixed(Double(batches) / runSeconds, 1))
            o.add("mb_per_s", Format.fixed(mbPerSecond, 1))
            o.add(result, peakRSS: rss, headerCheck: dataset.verifiesHeaders)
            Terminal.line(o.text)
        } else {
            Self.printStrategy(dataset)
            Terminal.line("opened in  \(Format.fixed(openSeconds, 3)) s (the dataset and the loader)")
            Terminal.line("loader     \(report)")
            Terminal.line("order      \(orderText(options))")
            Terminal.line(
                "read       \(Format.count(samples, "sample")) in \(Format.count(batches)) batch\(batches == 1 ? "" : "es") (\(Format.bytes(result.bytes))) in \(Format.fixed(runSeconds, 3)) s"
            )
            Terminal.line(
                "first      "
                    + (firstBatchSeconds.map { "batch after \(Format.fixed($0, 4)) s" }
                        ?? "no batch: the epoch is empty")
            )
            Terminal.line(
                "rate       \(Format.count(Int((Double(samples) / runSeconds).rounded()))) samples/s, \(Format.fixed(Double(batches) / runSeconds, 1)) batches/s, \(Format.fixed(mbPerSecond, 1)) MB/s"
            )
            Self.printChecksum(result, peakRSS: rss, dataset)
        }
        try Terminal.flush()
    }

    /// `sequential`, `shuffle` or `locality_shuffle`, for `--json`.
    private func orderName(_ order: SampleOrder) -> String {
        switch order {
        case .sequential: return "sequential"
        case .shuffle: return "shuffle"
        case .localityShuffle: return "locality_shuffle"
        }
    }

    /// `shuffle, seed 1, epoch 0; batches of 256, the short last one dropped; native collation`.
    private func orderText(_ options: LoaderOptions) -> String {
        var order = options.order.description
        if options.order != .sequential { order += ", seed \(options.seed), epoch \(epoch ?? 0)" }
        let last = options.dropLast ? ", a short last one dropped" : ""
        return "\(order); batches of \(Format.count(options.batchSize))\(last); \(options.collate.rawValue) collation"
    }
}

/// The checksums reader threads computed for batches, until the consumer takes them (keyed by
/// the batch's positions buffer, one object per batch).
final class BatchHashes: Sendable {
    private let parts = Mutex<[ObjectIdentifier: Checksummer.Result]>([:])

    func put(_ part: Checksummer.Result, for batch: CollatedBatch) {
        parts.withLock { $0[ObjectIdentifier(batch.positions)] = part }
    }

    /// The checksum of `batch` (a map put it there before the loader returned the batch).
    func take(for batch: CollatedBatch) -> Checksummer.Result {
        parts.withLock { $0.removeValue(forKey: ObjectIdentifier(batch.positions)) }
            ?? Checksummer.Result()
    }
}
