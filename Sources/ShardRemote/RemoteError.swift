/// Why a remote request failed: what was attempted, on which object (its location and the URL
/// requested, never credentials), after how many attempts, and what failed. Its ``description``
/// is one line that also says what to check or do.
///
/// ```swift
/// // s3://datasets/train/shard-000001.tar (http://127.0.0.1:9000/datasets/train/shard-000001.tar):
/// // read of bytes 0-1023 failed: shard changed since ingest; run ingest again (its ETag is no
/// // longer "9b2cf535f27731c974343645a3985328")
/// ```
public struct RemoteError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What failed.
    public enum Kind: Sendable, Equatable {
        /// A location or URL that cannot be used (why).
        case invalidLocation(String)
        /// The configuration cannot serve the request: no credentials, a profile that does not
        /// exist, an unreadable config file (why and what to do).
        case configuration(String)
        /// `If-Match` failed (HTTP 412): the object is no longer the one with this ETag.
        case shardChanged(expectedETag: String)
        /// HTTP 401 or 403, with the server's error code and message when it sent them;
        /// `anonymous` when the request was unsigned.
        case accessDenied(status: Int, code: String?, message: String?, anonymous: Bool)
        /// HTTP 404, with the server's error code (`NoSuchKey`, `NoSuchBucket`) and message.
        case notFound(code: String?, message: String?)
        /// Any other HTTP status that is not success (after the retry budget when retryable).
        case httpStatus(status: Int, code: String?, message: String?)
        /// The transfer itself failed (connection refused or dropped, TLS, ...): libcurl's code
        /// and text.
        case transport(code: Int, text: String)
        /// No progress within the connect timeout or the low-speed limit (libcurl's text).
        case timedOut(String)
        /// The server answered something the client cannot use (why).
        case badResponse(String)
    }

    /// What failed.
    public let kind: Kind
    /// The object for messages: `s3://bucket/key (request URL)` or the URL, with any query string
    /// shortened to `?…` (a presigned URL's query holds a signature).
    public let url: String
    /// What was attempted: "stat", "read of bytes 0-1023", "list", "stream", "parse".
    public let operation: String
    /// How many requests were sent (0 when none could be).
    public let attempts: Int

    /// Makes an error. `url` must already be free of credentials (see ``redact(_:)``).
    public init(_ kind: Kind, url: String, operation: String, attempts: Int = 0) {
        self.kind = kind
        self.url = url
        self.operation = operation
        self.attempts = attempts
    }

    /// The same error with another attempt count.
    func after(attempts: Int) -> RemoteError { RemoteError(kind, url: url, operation: operation, attempts: attempts) }

    /// `url` without user information and with its query string shortened to `?…`.
    public static func redact(_ url: String) -> String {
        var text = Substring(url)
        if let q = text.firstIndex(of: "?") { text = text[..<q] + "?…" }
        if let scheme = text.firstRange(of: "://") {
            let afterScheme = text[scheme.upperBound...]
            let authorityEnd = afterScheme.firstIndex(of: "/") ?? afterScheme.endIndex
            if let at = afterScheme[..<authorityEnd].lastIndex(of: "@") {
                text = text[..<scheme.upperBound] + afterScheme[afterScheme.index(after: at)...]
            }
        }
        return String(text)
    }

    /// libcurl's codes for a certificate that cannot be verified (peer failed verification, bad
    /// CA file, bad client certificate, CA cert problem) or a hostname mismatch.
    static let certificateCodes: Set<Int> = [51, 58, 60, 77, 83, 90, 91]

    /// Whether the shard changed since its ETag was recorded (HTTP 412 on `If-Match`).
    public var isShardChanged: Bool {
        if case .shardChanged = kind { return true }
        return false
    }

    /// One line: the object, what was attempted, what failed, what to check.
    public var description: String {
        let head = "\(url): \(operation) failed"
        let tries = attempts > 1 ? " after \(attempts) attempts" : ""
        func server(_ status: Int, _ code: String?, _ message: String?) -> String {
            var s = "HTTP \(status)"
            if let code, !code.isEmpty { s += " \(code)" }
            if let message, !message.isEmpty { s += ": \(message)" }
            return s
        }
        switch kind {
        case .invalidLocation(let reason):
            return "\(url): not a usable shard location: \(reason)"
        case .configuration(let reason):
            return "\(head): \(reason)"
        case .shardChanged(let etag):
            return "\(head): shard changed since ingest; run ingest again (its ETag is no longer \(etag))"
        case .accessDenied(let status, let code, let message, let anonymous):
            let check =
                anonymous
                ? "the request was unsigned (anonymous): the bucket must allow public reads, or give credentials "
                    + "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
                : "check the credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE), "
                    + "the permissions on the bucket and key, and this machine's clock"
            return "\(head): access denied (\(server(status, code, message))); \(check)"
        case .notFound(let code, let message):
            return
                "\(head): not found (\(server(404, code, message))); check the bucket name and the key "
                + "(and the endpoint: AWS_ENDPOINT_URL or --endpoint)"
        case .httpStatus(let status, let code, let message):
            return "\(head)\(tries): \(server(status, code, message))"
        case .transport(let code, let text) where Self.certificateCodes.contains(code):
            return
                "\(head): \(text) (curl error \(code)); the server's certificate could not be verified: for a "
                + "private CA give its certificates with --ca-bundle (or AWS_CA_BUNDLE)"
        case .transport(let code, let text):
            return
                "\(head)\(tries): \(text) (curl error \(code)); check that the server is up and reachable "
                + "and the endpoint is right"
        case .timedOut(let text):
            return
                "\(head)\(tries): timed out (\(text)); the server or network stalled: try again, or raise "
                + "the timeouts"
        case .badResponse(let reason):
            return "\(head): unexpected answer from the server: \(reason)"
        }
    }
}
