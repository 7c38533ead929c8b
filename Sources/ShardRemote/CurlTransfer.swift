import CShardCurl

#if canImport(Glibc)
    import Glibc
#endif

/// libcurl, loaded (dlopen) and its global state set up once before the first handle
/// (`curl_global_init` is not thread-safe against other libcurl calls; a Swift global initializer
/// runs once, under a lock).
let curlReady: Bool = curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK

/// Why libcurl cannot be used, and what to do, when ``curlReady`` is false.
var curlUnavailable: String {
    let why = String(cString: shard_curl_load_error())
    return why.isEmpty
        ? "libcurl could not be initialized (curl_global_init failed)"
        : "libcurl could not be loaded (\(why)); install it to read remote shards (Debian and Ubuntu: apt-get install libcurl4)"
}

/// One libcurl easy handle (owned: cleaned up on deinit). A handle keeps its connections alive
/// between requests, so a pool of them is a pool of keep-alive connections. Used by one thread
/// at a time (the pool hands it out).
///
/// A handle released in a forked child is not cleaned up: its connections are the parent's
/// sockets, and closing them there (a TLS close_notify) would break the parent's. It leaks.
final class EasyHandle: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    /// libcurl writes the reason for a failure here (CURLOPT_ERRORBUFFER).
    let errorBuffer: UnsafeMutablePointer<CChar>
    /// The process that made the handle.
    private let owner = getpid()

    init() {
        precondition(curlReady, "an easy handle made before a request found libcurl usable")
        guard let handle = curl_easy_init() else { fatalError("curl_easy_init failed (out of memory)") }
        raw = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        guard getpid() == owner else { return }
        curl_easy_cleanup(raw)
        errorBuffer.deallocate()
    }

    /// libcurl's text for the last failure: the error buffer, else `curl_easy_strerror`.
    func failureText(_ code: CURLcode) -> String {
        let detail = String(cString: errorBuffer)
        return detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
    }
}

/// One request: what to send and where its answer goes.
struct RequestSpec {
    enum Method { case get, head }
    var url: String
    var method: Method
    var headers: [String]
    /// The object for messages (`s3://b/k (url)` or the URL, redacted).
    var displayURL: String
    var operation: String
    /// Signing: region and credentials, or nil for an unsigned request.
    var signing: (region: String, credentials: AWSCredentials)?
    var anonymousS3: Bool
    var followRedirects: Bool
}

/// The state of one transfer that libcurl's callbacks write into: the response's status and
/// headers, and its body, into a caller's buffer, a growing array, or a stream's queue.
final class Transfer {
    enum Sink {
        /// A range into a caller's buffer; `skip` bytes of a 200 answer are dropped first (a
        /// server that ignored the Range header).
        case buffer(UnsafeMutableRawBufferPointer)
        /// The whole body, up to a limit.
        case collect(limit: Int)
        /// A stream's queue (``RemoteStream``).
        case stream(StreamQueue)
    }

    let sink: Sink
    /// The range's first byte (for a 200 answer to a range request).
    let rangeStart: Int64
    var status = 0
    var headers: [(name: String, value: String)] = []
    /// Bytes of a successful body delivered to the sink (or collected).
    var delivered = 0
    /// Bytes of a 200 answer to a range request dropped before the range.
    var skipped: Int64 = 0
    var body: [UInt8] = []
    /// The error body (bounded), for the server's code and message.
    var errorBody: [UInt8] = []
    /// Set when the callback stopped the transfer on purpose (the range is complete).
    var finishedEarly = false
    /// Set when the server sent more than fits (a reason).
    var overflow: String?
    var isRangeRequest: Bool
    /// Set at the blank line that ends a final (not 1xx or 3xx) response's headers.
    var headersDone = false

    init(sink: Sink, rangeStart: Int64 = 0, isRangeRequest: Bool = false) {
        self.sink = sink
        self.rangeStart = rangeStart
        self.isRangeRequest = isRangeRequest
    }

    /// A header's value (the last one with that name, compared in lower case); only the
    /// ``keptHeaders`` are kept.
    func header(_ name: String) -> String? {
        assert(Self.keptHeaders.contains(Array(name.utf8)), "header '\(name)' is not kept")
        return headers.last { $0.name == name }?.value
    }

    var isSuccess: Bool { (200..<300).contains(status) }

    /// The response headers the client reads (``header(_:)``), lower case; others are not kept.
    static let keptHeaders: [[UInt8]] = ["content-length", "content-range", "etag", "last-modified"].map {
        Array($0.utf8)
    }

    /// Takes one header line from libcurl. A status line starts a new response (after a redirect
    /// or `100 Continue`), forgetting the previous one's headers. Works on the bytes: only the
    /// ``keptHeaders`` become strings (a range read's answer has a dozen lines it never needs).
    func takeHeaderLine(_ line: UnsafeRawBufferPointer) {
        var count = line.count
        while count > 0 && (line[count - 1] == 0x0A || line[count - 1] == 0x0D) { count -= 1 }
        if count == 0 {
            if status >= 200 && !(300..<400).contains(status) { headersDone = true }
            return
        }
        if count >= 5 && line[0] == 0x48 && line[1] == 0x54 && line[2] == 0x54 && line[3] == 0x50 && line[4] == 0x2F {
            // "HTTP/1.1 206 Partial Content": the three digits after the first space.
            var i = 5
            while i < count && line[i] != 0x20 { i += 1 }
            while i < count && line[i] == 0x20 { i += 1 }
            var code = 0
            var digits = 0
            while i < count, digits < 3, line[i] >= 0x30, line[i] <= 0x39 {
                code = code * 10 + Int(line[i] - 0x30)
                digits += 1
                i += 1
            }
            status = digits == 3 ? code : 0
            headers = []
            headersDone = false
            return
        }
        var colon = 0
        while colon < count && line[colon] != 0x3A { colon += 1 }
        guard colon < count else { return }
        // ASCII case-insensitive: OR 0x20 folds A-Z onto a-z ('-' is 0x2D either way).
        guard
            let name = Self.keptHeaders.first(where: { wanted in
                wanted.count == colon && wanted.indices.allSatisfy { line[$0] | 0x20 == wanted[$0] | 0x20 }
            })
        else { return }
        var from = colon + 1
        var to = count
        while from < to && (line[from] == 0x20 || line[from] == 0x09) { from += 1 }
        while to > from && (line[to - 1] == 0x20 || line[to - 1] == 0x09) { to -= 1 }
        headers.append(
            (
                String(decoding: name, as: UTF8.self),
                String(decoding: UnsafeRawBufferPointer(rebasing: line[from..<to]), as: UTF8.self)
            ))
    }

    /// Takes body bytes from libcurl; returns how many it took (fewer stops the transfer) or
    /// `CURL_WRITEFUNC_PAUSE`.
    func takeBody(_ data: UnsafeRawBufferPointer) -> Int {
        guard isSuccess else {
            let room = max(0, (64 << 10) - errorBody.count)
            errorBody.append(contentsOf: data.prefix(room))
            return data.count
        }
        var piece = data
        var drop = 0
        if status == 200 && isRangeRequest && skipped < rangeStart {
            // A server that ignored the Range header: drop what lies before the range (counted
            // once taken: a paused piece comes again).
            drop = Int(min(Int64(piece.count), rangeStart - skipped))
            piece = UnsafeRawBufferPointer(rebasing: piece[drop...])
        }
        switch sink {
        case .buffer(let buffer):
            skipped += Int64(drop)
            let room = buffer.count - delivered
            let n = min(room, piece.count)
            if n > 0 {
                buffer.baseAddress!.advanced(by: delivered).copyMemory(from: piece.baseAddress!, byteCount: n)
                delivered += n
            }
            if piece.count > n {
                // A server that ignored the Range header sends the rest of the object: stop once
                // the range is complete. A 206 answer longer than asked for is an error.
                if status == 200 && isRangeRequest {
                    finishedEarly = true
                } else {
                    overflow = "the server sent more than the \(buffer.count) bytes asked for"
                }
                return 0
            }
            return data.count
        case .collect(let limit):
            guard body.count + data.count <= limit else {
                overflow = "the answer is larger than \(limit) bytes"
                return 0
            }
            body.append(contentsOf: data)
            delivered += data.count
            return data.count
        case .stream(let queue):
            guard queue.push(piece) else { return Int(CURL_WRITEFUNC_PAUSE) }
            skipped += Int64(drop)
            delivered += piece.count
            return data.count
        }
    }
}

/// libcurl's header callback: `userdata` is the ``Transfer``.
private let headerCallback: curl_write_callback = { pointer, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    transfer.takeHeaderLine(UnsafeRawBufferPointer(start: pointer, count: size * count))
    return size * count
}

/// libcurl's write callback: `userdata` is the ``Transfer``.
private let writeCallback: curl_write_callback = { pointer, size, count, userdata in
    let transfer = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
    return transfer.takeBody(UnsafeRawBufferPointer(start: pointer, count: size * count))
}

extension EasyHandle {
    /// Resets the handle (keeping its connections) and sets every option for `spec`, writing into
    /// `transfer`. Returns the header list, which must live until the transfer ends
    /// (`curl_slist_free_all`).
    ///
    /// The transfer object is passed to the callbacks unretained: the caller keeps it alive.
    func configure(_ spec: RequestSpec, _ transfer: Transfer, _ configuration: RemoteConfiguration)
        -> UnsafeMutablePointer<curl_slist>?
    {
        curl_easy_reset(raw)
        errorBuffer.pointee = 0
        let h = raw
        _ = shard_curl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
        _ = shard_curl_setopt_string(h, CURLOPT_URL, spec.url)
        _ = shard_curl_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = shard_curl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        _ = shard_curl_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1)
        _ = shard_curl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout * 1000))
        _ = shard_curl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, configuration.lowSpeedLimit)
        _ = shard_curl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, configuration.lowSpeedSeconds)
        _ = shard_curl_setopt_string(h, CURLOPT_USERAGENT, "shardstore")
        if let ca = configuration.caBundle { _ = shard_curl_setopt_string(h, CURLOPT_CAINFO, ca) }
        if spec.followRedirects {
            _ = shard_curl_setopt_long(h, CURLOPT_FOLLOWLOCATION, 1)
            _ = shard_curl_setopt_long(h, CURLOPT_MAXREDIRS, 5)
            _ = shard_curl_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        }
        switch spec.method {
        case .get: _ = shard_curl_setopt_long(h, CURLOPT_HTTPGET, 1)
        case .head: _ = shard_curl_setopt_long(h, CURLOPT_NOBODY, 1)
        }
        var headers = spec.headers
        if let signing = spec.signing {
            _ = shard_curl_setopt_string(h, CURLOPT_AWS_SIGV4, "aws:amz:\(signing.region):s3")
            _ = shard_curl_setopt_string(h, CURLOPT_USERNAME, signing.credentials.accessKeyID)
            _ = shard_curl_setopt_string(h, CURLOPT_PASSWORD, signing.credentials.secretAccessKey)
            // libcurl 7.88 signs only host and x-amz-date unless given this header; with it, the
            // header is sent and signed (every header given here is). A GET or HEAD has an empty
            // body: its SHA-256 is the honest value whatever libcurl puts in the canonical request.
            headers.append("x-amz-content-sha256: " + emptyBodySHA256)
            if let token = signing.credentials.sessionToken { headers.append("x-amz-security-token: " + token) }
        }
        headers.append("Accept-Encoding: identity")
        var list: UnsafeMutablePointer<curl_slist>?
        for line in headers { list = curl_slist_append(list, line) }
        _ = shard_curl_setopt_list(h, CURLOPT_HTTPHEADER, list)
        let context = Unmanaged.passUnretained(transfer).toOpaque()
        _ = shard_curl_setopt_write_function(h, CURLOPT_HEADERFUNCTION, headerCallback)
        _ = shard_curl_setopt_pointer(h, CURLOPT_HEADERDATA, context)
        _ = shard_curl_setopt_write_function(h, CURLOPT_WRITEFUNCTION, writeCallback)
        _ = shard_curl_setopt_pointer(h, CURLOPT_WRITEDATA, context)
        return list
    }
}

/// The SHA-256 of an empty body, hex: the payload hash of a GET or HEAD.
let emptyBodySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/// What became of one attempt.
enum AttemptOutcome {
    case success
    case failure(RemoteError.Kind, retryable: Bool)
}

extension RequestSpec {
    /// Classifies a finished attempt from libcurl's result and the transfer's status.
    func outcome(_ code: CURLcode, _ transfer: Transfer, _ handle: EasyHandle, scrub: (String) -> String)
        -> AttemptOutcome
    {
        if code == CURLE_WRITE_ERROR && transfer.finishedEarly { return .success }
        if let overflow = transfer.overflow { return .failure(.badResponse(overflow), retryable: false) }
        guard code == CURLE_OK else {
            let text = scrub(handle.failureText(code))
            switch code {
            case CURLE_OPERATION_TIMEDOUT:
                return .failure(.timedOut(text), retryable: true)
            case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_RECV_ERROR,
                CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM,
                CURLE_SSL_CONNECT_ERROR, CURLE_WEIRD_SERVER_REPLY:
                return .failure(.transport(code: Int(code.rawValue), text: text), retryable: true)
            default:
                return .failure(.transport(code: Int(code.rawValue), text: text), retryable: false)
            }
        }
        let status = transfer.status
        if (200..<300).contains(status) || (status == 416 && transfer.isRangeRequest) { return .success }
        let (errorCode, message) = S3ErrorBody.parse(transfer.errorBody)
        let c = errorCode.map(scrub)
        let m = message.map(scrub)
        switch status {
        case 412:
            let etag = headers.first { $0.lowercased().hasPrefix("if-match:") }.map {
                String($0.dropFirst(9).trimmingWhitespace())
            }
            return .failure(.shardChanged(expectedETag: etag ?? "?"), retryable: false)
        case 401, 403:
            return .failure(
                .accessDenied(status: status, code: c, message: m, anonymous: anonymousS3), retryable: false)
        case 404:
            return .failure(.notFound(code: c, message: m), retryable: false)
        default:
            return .failure(
                .httpStatus(status: status, code: c, message: m), retryable: RetryPolicy.isRetryable(status: status))
        }
    }
}
