import CShardCurl
import ShardCore

/// A whole object read front to back as it arrives, with one GET: the ingest scanner's input for
/// a remote shard. Pull-style: ``read(into:)`` hands out the next bytes, driving the transfer on
/// the calling thread (no thread of its own, so nothing to stop after a fork); libcurl is paused
/// while the reader is busy elsewhere, so memory stays at the queue's size.
///
/// A connection that drops or stalls mid-object is resumed from the next byte with a range GET
/// checked by `If-Match` against the first answer's ETag, as ``RemoteConfiguration/retry`` allows.
///
/// It is also a forward-only ``RandomAccessBytes`` for `TarScanner`: ``read(into:at:)`` and
/// ``forEachPiece(offset:count:_:)`` take offsets at or after the oldest byte kept (the last
/// ``retained`` bytes handed out stay readable), skipping forward by reading past what lies
/// between.
///
/// For one thread at a time.
///
/// ```swift
/// let stream = try client.openStream(shard)
/// var scanner = TarScanner(stream)            // stream.info.size, stream.info.etag known already
/// while let entry = try scanner.next() { ... }
/// ```
public final class RemoteStream: RandomAccessBytes {
    /// The object as the answer described it (size, ETag, Last-Modified).
    public private(set) var info: RemoteObjectInfo
    /// Bytes received from the server so far (resumed requests included).
    public private(set) var bytesReceived: Int64 = 0
    /// Requests sent so far (1 plus resumptions and retries).
    public var requests: Int { budget.attempts }

    private let client: RemoteClient
    private let location: RemoteLocation
    private let ifMatch: String?
    private let handle: EasyHandle
    private let multi: MultiHandle
    private let queue: StreamQueue
    private var spec: RequestSpec
    private var transfer: Transfer
    private var list: UnsafeMutablePointer<curl_slist>?
    private var attached = false
    private var released = false
    private var finished: CURLcode?
    private var budget: RetryBudget
    /// The object offset of the next byte ``read(into:)`` hands out.
    private var position: Int64 = 0
    /// The window for ``read(into:at:)``: object offset of `window[0]` and the bytes it holds.
    private let window: UnsafeMutableRawBufferPointer
    private var windowStart: Int64 = 0
    private var windowCount = 0

    /// How many bytes behind the newest one stay readable through ``read(into:at:)``.
    public static let retained = 64 << 10

    init(client: RemoteClient, location: RemoteLocation, ifMatch: String?, queueSize: Int) throws(RemoteError) {
        let headers = RemoteClient.ifMatchHeaders(ifMatch)
        // First, so that a client that cannot send requests (libcurl missing) throws before it
        // takes handles.
        spec = try client.request(for: location, method: .get, headers: headers, operation: "stream")
        self.client = client
        self.location = location
        self.ifMatch = ifMatch
        handle = client.takeHandle()
        multi = client.takeMulti(connections: 1)
        queue = StreamQueue(capacity: queueSize)
        window = .allocate(byteCount: max(queueSize, 2 * Self.retained), alignment: 16)
        budget = RetryBudget(client.configuration.retry)
        info = RemoteObjectInfo(location: location, size: 0, etag: ifMatch)
        transfer = Transfer(sink: .stream(queue))
        do {
            try start()
        } catch {
            release()
            throw error
        }
    }

    deinit { release() }

    /// Returns the handles to the client's pools and frees the window, once (a throwing init
    /// releases, and then deinit runs too).
    private func release() {
        guard !released else { return }
        released = true
        detach()
        client.giveBack(handle)
        client.giveBack(multi)
        window.deallocate()
    }

    private func detach() {
        guard attached else { return }
        curl_multi_remove_handle(multi.raw, handle.raw)
        curl_slist_free_all(list)
        list = nil
        attached = false
    }

    /// Sends the request for the bytes from ``position`` on (a plain GET at 0, a range GET checked
    /// against the ETag after), retrying until its answer's headers say success.
    private func start() throws(RemoteError) {
        while true {
            detach()
            var attempt = spec
            if position > 0 {
                guard let etag = info.etag, !etag.hasPrefix("W/") else {
                    throw RemoteError(
                        .badResponse(
                            "the connection broke at byte \(position) and the server sent no strong ETag to resume with"
                        ),
                        url: spec.displayURL, operation: spec.operation, attempts: budget.attempts)
                }
                attempt.headers = ["Range: bytes=\(position)-"] + RemoteClient.ifMatchHeaders(etag)
                attempt.operation = "stream (resumed at byte \(position))"
            }
            transfer = Transfer(sink: .stream(queue), rangeStart: position, isRangeRequest: position > 0)
            finished = nil
            budget.begin()
            list = handle.configure(attempt, transfer, client.configuration)
            _ = shard_curl_setopt_long(handle.raw, CURLOPT_BUFFERSIZE, 256 << 10)
            curl_multi_add_handle(multi.raw, handle.raw)
            attached = true
            pump { self.transfer.headersDone && self.transfer.isSuccess }
            if transfer.headersDone && transfer.isSuccess {
                try takeInfo(attempt)
                return
            }
            try retryOrThrow(attempt)
        }
    }

    /// Checks a successful answer's headers against what the stream expects and records the
    /// object's info from the first.
    private func takeInfo(_ attempt: RequestSpec) throws(RemoteError) {
        if position == 0 {
            guard transfer.status == 200 || transfer.status == 206 else {
                throw RemoteError(
                    .badResponse("HTTP \(transfer.status) for a GET"), url: attempt.displayURL,
                    operation: attempt.operation)
            }
            info = try client.info(
                of: transfer, location: location, spec: attempt, size: transfer.header("content-length"))
        } else if transfer.status == 206 {
            _ = try client.checkedRange(transfer, offset: position, spec: attempt)
        }
    }

    /// After a failed attempt: waits and returns when it may be retried, throws otherwise.
    private func retryOrThrow(_ attempt: RequestSpec) throws(RemoteError) {
        let code = finished ?? CURLE_OK
        var outcome = attempt.outcome(code, transfer, handle, scrub: client.scrub)
        if case .success = outcome {
            // The transfer ended cleanly but short of the object's end.
            outcome = .failure(
                .transport(
                    code: Int(CURLE_PARTIAL_FILE.rawValue), text: "the answer ended at byte \(position) of \(info.size)"
                ),
                retryable: true)
        }
        guard case .failure(let kind, let retryable) = outcome else { return }
        detach()
        if retryable, let delay = budget.nextDelay() {
            sleepSeconds(delay)
            return
        }
        throw RemoteError(kind, url: attempt.displayURL, operation: attempt.operation, attempts: budget.attempts)
    }

    /// Drives the transfer until `done()` holds or the transfer ends. It waits for the network
    /// only when a run of the transfer left `done()` false: a run that fills the queue pauses the
    /// transfer, whose connection then has nothing to wake a wait (each such wait was a 200 ms
    /// stall per queue's worth of bytes).
    private func pump(until done: () -> Bool) {
        while !done() && finished == nil {
            if queue.isPaused && queue.hasRoom {
                queue.isPaused = false
                _ = curl_easy_pause(handle.raw, CURLPAUSE_CONT)
                if done() { return }
            }
            let running = multi.perform()
            if let (_, code) = multi.nextFinished() { finished = code }
            if done() || finished != nil { return }
            // A paused transfer with room in the queue resumes at the top of the loop, at once.
            if running > 0 && !(queue.isPaused && queue.hasRoom) { multi.wait(upTo: 200) }
        }
    }

    /// Copies the next bytes of the object into `buffer`; returns how many (0 at its end).
    ///
    /// - Throws: ``RemoteError`` when the transfer fails and cannot be resumed (including
    ///   `.shardChanged` when the object was replaced mid-stream).
    /// - Complexity: O(buffer.count) copies; network time.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(RemoteError) -> Int {
        guard buffer.count > 0 else { return 0 }
        while true {
            if !queue.isEmpty {
                let n = queue.pop(into: buffer)
                position += Int64(n)
                bytesReceived += Int64(n)
                return n
            }
            if position >= info.size && transfer.headersDone { return 0 }
            if finished != nil {
                try retryOrThrow(spec)
                try start()
                continue
            }
            pump { !self.queue.isEmpty }
        }
    }

    // MARK: Forward-only random access

    /// The object's size (from the first answer).
    public var byteCount: Int64 { info.size }

    /// The object offsets ``read(into:at:)`` serves without skipping: from the oldest byte kept
    /// to the byte after the newest one received.
    public var heldRange: Range<Int64> { windowStart..<(windowStart + Int64(windowCount)) }

    /// Makes the window hold byte `offset` (reading forward, sliding the window and keeping the
    /// last ``retained`` bytes); returns false at the object's end.
    private func fill(holding offset: Int64) throws(RemoteError) -> Bool {
        while windowStart + Int64(windowCount) <= offset {
            if windowCount == window.count
                || (offset - windowStart > Int64(window.count) && windowCount > Self.retained)
            {
                let keep = min(Self.retained, windowCount)
                let drop = windowCount - keep
                window.baseAddress!.copyMemory(from: window.baseAddress! + drop, byteCount: keep)
                windowStart += Int64(drop)
                windowCount = keep
            }
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: window[windowCount...]))
            if n == 0 { return false }
            windowCount += n
        }
        return true
    }

    private func behind(_ offset: Int64) -> RemoteError {
        RemoteError(
            .badResponse(
                "byte \(offset) was asked for after the stream moved past it (it keeps bytes from \(windowStart))"),
            url: spec.displayURL, operation: "stream")
    }

    /// Copies up to `buffer.count` bytes at `offset` (at or after the window's start); fewer only
    /// at the object's end.
    ///
    /// - Throws: ``RemoteError``, also for an offset before the window.
    /// - Complexity: O(offset + count − the window's end) bytes received.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws -> Int {
        guard offset >= windowStart else { throw behind(offset) }
        var done = 0
        while done < buffer.count {
            let p = offset + Int64(done)
            guard try fill(holding: p) else { break }
            let n = Int(min(Int64(buffer.count - done), windowStart + Int64(windowCount) - p))
            (buffer.baseAddress! + done).copyMemory(from: window.baseAddress! + Int(p - windowStart), byteCount: n)
            done += n
        }
        return done
    }

    /// Calls `body` with the `count` bytes at `offset` in consecutive pieces (valid during the
    /// call), as ShardIO's `SequentialReader.forEachPiece` does for files.
    ///
    /// - Throws: ``RemoteError`` (also when the object ends before `offset + count`), or what
    ///   `body` throws.
    public func forEachPiece(offset: Int64, count: Int64, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard offset >= windowStart else { throw behind(offset) }
        var p = offset
        while p < offset + count {
            guard try fill(holding: p) else {
                throw RemoteError(
                    .badResponse(
                        "the object ends at byte \(windowStart + Int64(windowCount)), \(offset + count) needed"),
                    url: spec.displayURL, operation: "stream")
            }
            let n = Int(min(windowStart + Int64(windowCount) - p, offset + count - p))
            let start = Int(p - windowStart)
            try body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(window)[start..<(start + n)]))
            p += Int64(n)
        }
    }
}

extension RemoteClient {
    /// Starts reading the whole object as a stream and waits for the answer's headers, so its
    /// size and ETag are known (``RemoteStream/info``) and a missing object or a refusal throws
    /// here.
    ///
    /// - Parameters:
    ///   - ifMatch: an ETag the object must have (re-ingest of a known shard).
    ///   - queueSize: bytes received ahead of the reader at most (default 4 MiB).
    /// - Throws: ``RemoteError``.
    public func openStream(_ location: RemoteLocation, ifMatch: String? = nil, queueSize: Int = 4 << 20)
        throws(RemoteError) -> RemoteStream
    {
        precondition(queueSize >= 64 << 10, "a stream's queue must hold at least 64 KiB")
        return try RemoteStream(client: self, location: location, ifMatch: ifMatch, queueSize: queueSize)
    }
}

/// Bytes received and not yet read: a fixed buffer that libcurl's write callback appends to
/// (refusing, so that libcurl pauses, when a piece does not fit) and the reader takes from.
final class StreamQueue {
    private var storage: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    /// Set when a piece was refused and libcurl paused the transfer.
    var isPaused = false

    init(capacity: Int) { storage = .allocate(byteCount: capacity, alignment: 16) }

    deinit { storage.deallocate() }

    var isEmpty: Bool { start == end }

    /// Whether at least a quarter of the buffer is free.
    var hasRoom: Bool { storage.count - (end - start) >= storage.count / 4 }

    /// Appends `data` when it fits (moving what is queued to the front when needed; growing when
    /// the queue is empty and the piece is larger than the buffer). False: refused, paused.
    func push(_ data: UnsafeRawBufferPointer) -> Bool {
        if data.count > storage.count - (end - start) {
            guard isEmpty else {
                isPaused = true
                return false
            }
            storage.deallocate()
            storage = .allocate(byteCount: data.count, alignment: 16)
            start = 0
            end = 0
        }
        if end + data.count > storage.count {
            storage.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: end - start)
            end -= start
            start = 0
        }
        if data.count > 0 { (storage.baseAddress! + end).copyMemory(from: data.baseAddress!, byteCount: data.count) }
        end += data.count
        return true
    }

    /// Moves up to `buffer.count` queued bytes into `buffer`; returns how many.
    func pop(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, end - start)
        buffer.baseAddress!.copyMemory(from: storage.baseAddress! + start, byteCount: n)
        start += n
        if start == end {
            start = 0
            end = 0
        }
        return n
    }
}
