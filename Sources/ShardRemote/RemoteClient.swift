import CShardCurl
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads objects in S3-compatible storage and on web servers with libcurl: stat (HEAD), byte
/// ranges into a caller's buffer (one at a time from any number of threads, or a batch with many
/// in flight), a whole object as a pull stream for the ingest scanner, and bucket listings.
///
/// S3 requests are signed with libcurl's SigV4 unless anonymous; `http(s)` URLs are never signed.
/// Failed requests are retried as ``RemoteConfiguration/retry`` says. HTTPS certificates are
/// always verified.
///
/// Thread-safe. Connections are kept alive in a pool of easy handles (one per concurrent reader)
/// and in the batch's multi handles. No Dispatch and no Swift concurrency: reads block the calling
/// thread.
///
/// **Fork safety.** A client belongs to the process that made it. Used in a forked child, it
/// leaves its pools alone (a parent's thread may have held their lock at the fork, and their
/// connections are the parent's sockets) and sends each request on a new handle, without
/// keep-alive: a child should switch to ``forChildProcess()``. Handles are never cleaned up in
/// a child (that would close the parent's TLS sessions): the parent's leak there.
///
/// ```swift
/// let client = RemoteClient(configuration: try RemoteConfiguration.resolve())
/// let shard = try RemoteLocation(parsing: "s3://datasets/train/shard-000001.tar")
/// let info = try client.stat(shard)
/// var header = [UInt8](repeating: 0, count: 512)
/// let n = try header.withUnsafeMutableBytes { try client.read(shard, at: 0, into: $0, ifMatch: info.etag) }
/// ```
public final class RemoteClient: Sendable {
    /// The configuration the client was made with.
    public let configuration: RemoteConfiguration
    /// Idle easy handles in stripes, a thread using the stripe its id falls in: threads that read
    /// at once rarely wait for one another's lock, and a thread mostly gets back its own handle
    /// (and its kept-alive connection).
    private let idle: [IdleHandles] = (0..<RemoteClient.stripes).map { _ in IdleHandles() }
    /// The number of stripes of ``idle``.
    static let stripes = 16
    private let idleMultis = Mutex<[MultiHandle]>([])
    /// The process whose pools these are.
    private let owner: pid_t

    /// Makes a client (no connection is opened until the first request; libcurl is loaded then,
    /// and a request fails with `.configuration` saying what to install when it cannot be).
    public convenience init(configuration: RemoteConfiguration) {
        self.init(configuration: configuration, owner: getpid())
    }

    /// A client whose pools belong to process `owner` (tests pretend to be a forked child).
    init(configuration: RemoteConfiguration, owner: pid_t) {
        self.configuration = configuration
        self.owner = owner
    }

    /// A client with the same configuration and no connections, for a child process after
    /// `fork()`.
    public func forChildProcess() -> RemoteClient { RemoteClient(configuration: configuration) }

    /// The version of the libcurl in use (`7.88.1`), or why none can be loaded.
    public static var curlVersion: String {
        guard curlReady else { return curlUnavailable }
        let v = shard_curl_version_number()
        return "\(v >> 16).\((v >> 8) & 0xFF).\(v & 0xFF)"
    }

    // MARK: Stat

    /// The object's size, ETag and modification time, from a HEAD request.
    ///
    /// - Throws: ``RemoteError``: `.notFound` (404), `.accessDenied` (401/403), or what the
    ///   retries left (transport errors, 5xx); `.badResponse` when the answer has no size.
    /// - Complexity: one request (more on retries).
    public func stat(_ location: RemoteLocation) throws(RemoteError) -> RemoteObjectInfo {
        let spec = try request(for: location, method: .head, headers: [], operation: "stat")
        let transfer = try perform(spec) { Transfer(sink: .collect(limit: 0)) }
        return try info(of: transfer, location: location, spec: spec, size: transfer.header("content-length"))
    }

    /// The info in a successful answer's headers; `sizeText` is the object's size as sent.
    func info(of transfer: Transfer, location: RemoteLocation, spec: RequestSpec, size sizeText: String?)
        throws(RemoteError) -> RemoteObjectInfo
    {
        guard let sizeText, let size = Int64(sizeText), size >= 0 else {
            throw RemoteError(
                .badResponse("HTTP \(transfer.status) without the object's size (Content-Length)"),
                url: spec.displayURL, operation: spec.operation)
        }
        let modified = transfer.header("last-modified")
        return RemoteObjectInfo(
            location: location, size: size, etag: transfer.header("etag"),
            lastModified: modified.flatMap(HTTPDate.parse),
            lastModifiedText: modified)
    }

    // MARK: Range reads

    /// Reads `buffer.count` bytes of the object from `offset` into `buffer` (one range GET).
    /// Returns the number of bytes read: fewer than asked only when the object ends first (0 when
    /// `offset` is at or past its end).
    ///
    /// With `ifMatch` (the ETag recorded at ingest), an object replaced since answers 412 and the
    /// read throws ``RemoteError/Kind/shardChanged(expectedETag:)``: wrong bytes are never
    /// returned (a weak ETag, `W/"…"`, is not sent: `If-Match` never matches one). A server that
    /// ignores `Range` and sends the whole object is read up to the range.
    ///
    /// - Throws: ``RemoteError``; transient failures are retried first.
    /// - Complexity: one request (more on retries); `buffer.count` bytes copied.
    public func read(
        _ location: RemoteLocation, at offset: Int64, into buffer: UnsafeMutableRawBufferPointer,
        ifMatch etag: String? = nil
    ) throws(RemoteError) -> Int {
        precondition(offset >= 0, "a read offset cannot be negative")
        guard buffer.count > 0 else { return 0 }
        let spec = try rangeRequest(location, offset: offset, count: buffer.count, ifMatch: etag)
        let transfer = try perform(spec) { Transfer(sink: .buffer(buffer), rangeStart: offset, isRangeRequest: true) }
        return try checkedRange(transfer, offset: offset, spec: spec)
    }

    /// The request for `count` bytes at `offset`.
    func rangeRequest(_ location: RemoteLocation, offset: Int64, count: Int, ifMatch etag: String?) throws(RemoteError)
        -> RequestSpec
    {
        let last = offset + Int64(count) - 1
        let headers = ["Range: bytes=\(offset)-\(last)"] + Self.ifMatchHeaders(etag)
        return try request(for: location, method: .get, headers: headers, operation: "read of bytes \(offset)-\(last)")
    }

    /// The `If-Match` header for `etag`; none without one or for a weak one (`W/"…"`), which
    /// `If-Match`'s strong comparison never matches.
    static func ifMatchHeaders(_ etag: String?) -> [String] {
        guard let etag, !etag.hasPrefix("W/") else { return [] }
        return ["If-Match: \(etag)"]
    }

    /// The bytes a finished range transfer delivered, after checking that a 206 answer starts
    /// where asked.
    func checkedRange(_ transfer: Transfer, offset: Int64, spec: RequestSpec) throws(RemoteError) -> Int {
        if transfer.status == 416 { return 0 }
        if transfer.status == 206, let range = transfer.header("content-range") {
            // "bytes START-END/SIZE"
            let digits = range.drop { !$0.isNumber }.prefix { $0.isNumber }
            guard Int64(digits) == offset else {
                throw RemoteError(
                    .badResponse("asked for bytes from \(offset), got Content-Range '\(range)'"), url: spec.displayURL,
                    operation: spec.operation)
            }
        }
        return transfer.delivered
    }

    // MARK: Requests

    /// A request for `location`: the URL, signing, and the text for messages.
    func request(
        for location: RemoteLocation, method: RequestSpec.Method, headers: [String], operation: String,
        query: String = ""
    ) throws(RemoteError) -> RequestSpec {
        guard curlReady else {
            throw RemoteError(.configuration(curlUnavailable), url: location.description, operation: operation)
        }
        let url = configuration.requestURL(for: location, query: query)
        let display: String
        var signing: (String, AWSCredentials)?
        var anonymous = false
        switch location {
        case .http:
            display = RemoteError.redact(url)
        case .s3(_, let key):
            display = "\(location) (\(RemoteError.redact(url)))"
            if key.isEmpty && query.isEmpty {
                throw RemoteError(.invalidLocation("no key after the bucket name"), url: display, operation: operation)
            }
            switch configuration.signing {
            case .anonymous: anonymous = true
            case .credentials(let c): signing = (configuration.region, c)
            case .unavailable(let reason):
                throw RemoteError(.configuration(reason), url: display, operation: operation)
            }
        }
        return RequestSpec(
            url: url, method: method, headers: headers, displayURL: display, operation: operation,
            signing: signing.map { (region: $0.0, credentials: $0.1) }, anonymousS3: anonymous,
            followRedirects: !location.isS3)
    }

    /// Server text with the secret and session token removed.
    func scrub(_ text: String) -> String {
        if case .credentials(let c) = configuration.signing { return c.scrub(text) }
        return text
    }

    /// Sends `spec` on a pooled handle, retrying as the policy allows with a fresh transfer from
    /// `makeTransfer` each time; returns the successful transfer.
    func perform(_ spec: RequestSpec, _ makeTransfer: () -> Transfer) throws(RemoteError) -> Transfer {
        let handle = takeHandle()
        defer { giveBack(handle) }
        var budget = RetryBudget(configuration.retry)
        while true {
            let transfer = makeTransfer()
            budget.begin()
            let list = handle.configure(spec, transfer, configuration)
            let code = withExtendedLifetime(transfer) { curl_easy_perform(handle.raw) }
            curl_slist_free_all(list)
            switch spec.outcome(code, transfer, handle, scrub: scrub) {
            case .success:
                return transfer
            case .failure(let kind, let retryable):
                if retryable, let delay = budget.nextDelay() {
                    sleepSeconds(delay)
                    continue
                }
                throw RemoteError(kind, url: spec.displayURL, operation: spec.operation, attempts: budget.attempts)
            }
        }
    }

    /// An idle easy handle from the pool, or a new one.
    /// (In a forked child, always a new one.)
    func takeHandle() -> EasyHandle {
        guard getpid() == owner else { return EasyHandle() }
        return idle[Self.stripe()].handles.withLock { $0.popLast() } ?? EasyHandle()
    }

    /// The calling thread's stripe of the idle handles.
    private static func stripe() -> Int {
        // pthread_self is an address; its low bits are alike across threads (alignment).
        let id = UInt(pthread_self())
        return Int((id >> 12 ^ id >> 20) % UInt(stripes))
    }

    /// Returns a handle to the pool (its connection stays open for the next request); in a
    /// forked child, drops it.
    func giveBack(_ handle: EasyHandle) {
        guard getpid() == owner else { return }
        idle[Self.stripe()].handles.withLock { $0.append(handle) }
    }

    /// An idle multi handle from the pool, or a new one keeping up to `connections` connections
    /// (in a forked child, always a new one).
    func takeMulti(connections: Int) -> MultiHandle {
        guard getpid() == owner else { return MultiHandle(maxConnections: connections) }
        return idleMultis.withLock { $0.popLast() } ?? MultiHandle(maxConnections: connections)
    }

    func giveBack(_ multi: MultiHandle) {
        guard getpid() == owner else { return }
        idleMultis.withLock { $0.append(multi) }
    }
}

/// One stripe of a client's idle easy handles.
private final class IdleHandles: Sendable {
    let handles = Mutex<[EasyHandle]>([])
}
