import CShardCurl

#if canImport(Glibc)
    import Glibc
#endif

/// One range of a batch for ``RemoteClient/readRanges(_:maxInFlight:)``: `buffer.count` bytes of
/// `location` from `offset`, checked against `ifMatch` when given.
public struct RangeRequest: @unchecked Sendable {
    /// The object.
    public var location: RemoteLocation
    /// The first byte to read.
    public var offset: Int64
    /// Where the bytes go; valid until the batch returns.
    public var buffer: UnsafeMutableRawBufferPointer
    /// The ETag the object must still have (sent as `If-Match`).
    public var ifMatch: String?

    /// Makes a request.
    public init(location: RemoteLocation, offset: Int64, buffer: UnsafeMutableRawBufferPointer, ifMatch: String? = nil)
    {
        precondition(offset >= 0, "a read offset cannot be negative")
        self.location = location
        self.offset = offset
        self.buffer = buffer
        self.ifMatch = ifMatch
    }
}

/// A libcurl multi handle (owned): many transfers driven by one thread, sharing its cache of
/// keep-alive connections. Like ``EasyHandle``, never cleaned up in a forked child.
final class MultiHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    private let owner = getpid()

    init(maxConnections: Int) {
        guard let multi = curl_multi_init() else { fatalError("curl_multi_init failed (out of memory)") }
        raw = multi
        _ = shard_curl_multi_setopt_long(raw, CURLMOPT_MAXCONNECTS, max(maxConnections, 4))
    }

    deinit {
        guard getpid() == owner else { return }
        curl_multi_cleanup(raw)
    }

    /// Runs the transfers, then waits up to `milliseconds` for activity (or a wake-up).
    func step(waitingUpTo milliseconds: Int32) {
        if perform() > 0 { wait(upTo: milliseconds) }
    }

    /// Runs the transfers as far as they go without waiting; returns how many are still running.
    @discardableResult
    func perform() -> Int32 {
        var running: Int32 = 0
        _ = curl_multi_perform(raw, &running)
        return running
    }

    /// Waits up to `milliseconds` for activity on the transfers' connections (or a wake-up).
    func wait(upTo milliseconds: Int32) {
        _ = curl_multi_poll(raw, nil, 0, milliseconds, nil)
    }

    /// The next finished transfer: its easy handle and result.
    func nextFinished() -> (UnsafeMutableRawPointer, CURLcode)? {
        var remaining: Int32 = 0
        while let message = curl_multi_info_read(raw, &remaining) {
            if message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle {
                return (easy, shard_curl_message_result(message))
            }
        }
        return nil
    }
}

extension RemoteClient {
    /// Reads every range of `requests` with up to `maxInFlight` requests in flight at once
    /// (default ``RemoteConfiguration/maxInFlight``) on the calling thread, over kept-alive
    /// connections; returns, in the order of `requests`, each one's byte count (as
    /// ``read(_:at:into:ifMatch:)`` counts) or error.
    ///
    /// Each request is retried on its own under ``RemoteConfiguration/retry`` while the others go
    /// on. Many threads may run batches at once.
    ///
    /// ```swift
    /// let results = client.readRanges(members.map { RangeRequest(location: shard, offset: $0.offset, buffer: $0.buffer, ifMatch: etag) })
    /// ```
    ///
    /// - Complexity: `requests.count` requests (more on retries); the bytes copied.
    public func readRanges(_ requests: [RangeRequest], maxInFlight: Int? = nil) -> [Result<Int, RemoteError>] {
        var results = [Result<Int, RemoteError>?](repeating: nil, count: requests.count)
        var specs: [RequestSpec?] = []
        var ready: [Int] = []
        for (i, r) in requests.enumerated() {
            if r.buffer.count == 0 {
                results[i] = .success(0)
                specs.append(nil)
                continue
            }
            do {
                specs.append(try rangeRequest(r.location, offset: r.offset, count: r.buffer.count, ifMatch: r.ifMatch))
                ready.append(i)
            } catch {
                results[i] = .failure(error)
                specs.append(nil)
            }
        }
        guard !ready.isEmpty else { return results.map { $0! } }

        let width = max(1, min(maxInFlight ?? configuration.maxInFlight, ready.count))
        let multi = takeMulti(connections: max(width, configuration.maxInFlight))
        var spare: [EasyHandle] = []
        var budgets = [RetryBudget?](repeating: nil, count: requests.count)
        var waiting: [(at: Double, index: Int)] = []
        var active:
            [UnsafeMutableRawPointer: (
                index: Int, handle: EasyHandle, transfer: Transfer, list: UnsafeMutablePointer<curl_slist>?
            )] = [:]
        var nextReady = 0
        defer {
            for (_, a) in active {
                curl_multi_remove_handle(multi.raw, a.handle.raw)
                curl_slist_free_all(a.list)
                spare.append(a.handle)
            }
            for h in spare { giveBack(h) }
            giveBack(multi)
        }

        while true {
            let now = monotonicSeconds()
            if !waiting.isEmpty {
                waiting.sort { $0.at < $1.at }
                while let first = waiting.first, first.at <= now {
                    ready.append(first.index)
                    waiting.removeFirst()
                }
            }
            while active.count < width && nextReady < ready.count {
                let i = ready[nextReady]
                nextReady += 1
                let r = requests[i]
                let handle = spare.popLast() ?? takeHandle()
                let transfer = Transfer(sink: .buffer(r.buffer), rangeStart: r.offset, isRangeRequest: true)
                let list = handle.configure(specs[i]!, transfer, configuration)
                if budgets[i] == nil { budgets[i] = RetryBudget(configuration.retry) }
                budgets[i]!.begin()
                curl_multi_add_handle(multi.raw, handle.raw)
                active[handle.raw] = (i, handle, transfer, list)
            }
            if active.isEmpty {
                guard let next = waiting.map(\.at).min() else { break }
                sleepSeconds(next - now)
                continue
            }
            let untilRetry = waiting.map(\.at).min().map { max(0, $0 - now) } ?? 1
            multi.step(waitingUpTo: Int32(min(untilRetry, 1) * 1000))
            while let (easy, code) = multi.nextFinished() {
                guard let a = active.removeValue(forKey: easy) else { continue }
                curl_multi_remove_handle(multi.raw, easy)
                curl_slist_free_all(a.list)
                spare.append(a.handle)
                let spec = specs[a.index]!
                switch spec.outcome(code, a.transfer, a.handle, scrub: scrub) {
                case .success:
                    do {
                        results[a.index] = .success(
                            try checkedRange(a.transfer, offset: requests[a.index].offset, spec: spec))
                    } catch { results[a.index] = .failure(error) }
                case .failure(let kind, let retryable):
                    if retryable, let delay = budgets[a.index]!.nextDelay() {
                        waiting.append((monotonicSeconds() + delay, a.index))
                    } else {
                        results[a.index] = .failure(
                            RemoteError(
                                kind, url: spec.displayURL, operation: spec.operation,
                                attempts: budgets[a.index]!.attempts))
                    }
                }
            }
        }
        return results.map { $0! }
    }
}
