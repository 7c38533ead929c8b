#if canImport(Glibc)
    import Glibc
#endif

/// How S3 requests name the bucket.
public enum S3Addressing: Sendable, Equatable {
    /// Path style for a custom endpoint (`http://host:9000/bucket/key`), virtual-host style for AWS
    /// itself (`https://bucket.s3.REGION.amazonaws.com/key`) when the bucket name allows it.
    case automatic
    /// Always `ENDPOINT/bucket/key` (MinIO, Ceph, moto and most S3-compatible servers).
    case path
    /// Always `bucket.HOST/key`.
    case virtualHost
}

/// Everything a ``RemoteClient`` needs besides the locations: the S3 endpoint, region, addressing
/// and signing; TLS; timeouts; retries; how many requests to keep in flight. Build one from the
/// environment and the AWS files the way the AWS tools do with
/// ``resolve(environment:endpoint:profile:region:noSignRequest:caBundle:)``, or set the fields.
///
/// ```swift
/// var configuration = try RemoteConfiguration.resolve(endpoint: "http://127.0.0.1:9000")
/// configuration.retry.maxAttempts = 8
/// let client = RemoteClient(configuration: configuration)
/// ```
public struct RemoteConfiguration: Sendable {
    /// The S3 endpoint (`http://127.0.0.1:9000`, `https://storage.example.com`), or nil for AWS
    /// (`https://s3.REGION.amazonaws.com`).
    public var endpoint: String?
    /// The region S3 requests are signed for.
    public var region: String
    /// How S3 requests are authorized.
    public var signing: S3Signing
    /// How S3 URLs name the bucket.
    public var addressing: S3Addressing
    /// A file of CA certificates to verify HTTPS servers with, instead of the system's
    /// (`CURLOPT_CAINFO`). Certificates are always verified.
    public var caBundle: String?
    /// When failed requests are sent again.
    public var retry: RetryPolicy
    /// Seconds to wait for a connection (TCP and TLS).
    public var connectTimeout: Double
    /// A transfer slower than ``lowSpeedLimit`` bytes a second for ``lowSpeedSeconds`` seconds
    /// is abandoned as stalled (and retried).
    public var lowSpeedLimit: Int
    /// See ``lowSpeedLimit``.
    public var lowSpeedSeconds: Int
    /// The most requests ``RemoteClient/readRanges(_:maxInFlight:)`` keeps in flight by default.
    public var maxInFlight: Int
    /// Where the settings came from, for `info` and `--verbose` (never credentials).
    public var provenance: [String]

    /// Makes a configuration: AWS's endpoint and `us-east-1` unless given, anonymous unless given
    /// credentials, 10 s to connect, stalled below 1 KiB/s for 30 s, the default ``RetryPolicy``,
    /// 32 requests in flight.
    public init(
        endpoint: String? = nil, region: String = "us-east-1", signing: S3Signing = .anonymous,
        addressing: S3Addressing = .automatic, caBundle: String? = nil, retry: RetryPolicy = RetryPolicy(),
        connectTimeout: Double = 10, lowSpeedLimit: Int = 1024, lowSpeedSeconds: Int = 30, maxInFlight: Int = 32
    ) {
        self.endpoint = endpoint
        self.region = region
        self.signing = signing
        self.addressing = addressing
        self.caBundle = caBundle
        self.retry = retry
        self.connectTimeout = connectTimeout
        self.lowSpeedLimit = lowSpeedLimit
        self.lowSpeedSeconds = lowSpeedSeconds
        self.maxInFlight = maxInFlight
        self.provenance = []
    }

    /// The environment variables ``resolve(environment:endpoint:profile:region:noSignRequest:caBundle:)``
    /// reads, taken from this process (`getenv`).
    public static var processEnvironment: [String: String] {
        let names = [
            "HOME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
            "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_CA_BUNDLE", "AWS_MAX_ATTEMPTS",
            "SHARDSTORE_RETRY_SECONDS",
        ]
        var environment: [String: String] = [:]
        for name in names {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return environment
    }

    /// Resolves the configuration the way the AWS tools do. Explicit arguments win; then:
    ///
    /// - profile: `AWS_PROFILE`, `AWS_DEFAULT_PROFILE`, `default`;
    /// - credentials (unless `noSignRequest`): an explicit `profile` argument's keys, then
    ///   `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), then the
    ///   profile's `aws_access_key_id` / `aws_secret_access_key` / `aws_session_token` in the
    ///   credentials file, then in the config file;
    /// - region: `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's `region`, `us-east-1`;
    /// - endpoint: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, AWS;
    /// - CA bundle: `AWS_CA_BUNDLE`, the profile's `ca_bundle`;
    /// - retries: attempts from `AWS_MAX_ATTEMPTS` or the profile's `max_attempts` (1 to 100, as
    ///   the AWS tools count them: the first request included), the total time from
    ///   `SHARDSTORE_RETRY_SECONDS` (0 to 86400); ``RetryPolicy``'s defaults otherwise.
    ///
    /// Finding no credentials is not an error here (plain HTTP needs none): S3 requests then fail
    /// saying what to set. Credential processes, SSO and instance roles are not read.
    ///
    /// - Throws: ``RemoteError`` (`.configuration`) when an explicitly named profile exists in
    ///   neither file, a file cannot be read, the endpoint is not an http(s) URL, or a retry
    ///   setting is not a number in its range.
    public static func resolve(
        environment: [String: String] = processEnvironment, endpoint: String? = nil, profile: String? = nil,
        region: String? = nil, noSignRequest: Bool = false, caBundle: String? = nil
    ) throws(RemoteError) -> RemoteConfiguration {
        let files = try AWSSharedConfig.load(environment: environment)
        let profileName = profile ?? environment["AWS_PROFILE"] ?? environment["AWS_DEFAULT_PROFILE"] ?? "default"
        let named = profile != nil || environment["AWS_PROFILE"] != nil || environment["AWS_DEFAULT_PROFILE"] != nil
        if named && !files.hasProfile(profileName) && !(profile == nil && environment["AWS_ACCESS_KEY_ID"] != nil) {
            throw RemoteError(
                .configuration(
                    "the AWS profile '\(profileName)' is in neither the credentials file nor the config file; "
                        + "check AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE"),
                url: "profile \(profileName)", operation: "configuration")
        }
        var configuration = RemoteConfiguration()
        var provenance: [String] = []
        func setting(_ explicit: String?, _ argument: String, _ variables: [String], _ key: String) -> String? {
            if let explicit {
                provenance.append("\(key) from \(argument)")
                return explicit
            }
            for v in variables {
                if let value = environment[v], !value.isEmpty {
                    provenance.append("\(key) from \(v)")
                    return value
                }
            }
            if let value = files.value(key, profile: profileName), !value.isEmpty {
                provenance.append("\(key) from profile \(profileName)")
                return value
            }
            return nil
        }
        configuration.region =
            setting(region, "--region", ["AWS_REGION", "AWS_DEFAULT_REGION"], "region") ?? "us-east-1"
        if let url = setting(endpoint, "--endpoint", ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"], "endpoint_url") {
            configuration.endpoint = try validatedEndpoint(url)
        }
        configuration.caBundle = setting(caBundle, "--ca-bundle", ["AWS_CA_BUNDLE"], "ca_bundle")
        if let text = setting(nil, "", ["AWS_MAX_ATTEMPTS"], "max_attempts") {
            guard let attempts = Int(Self.trimmed(text)), (1...100).contains(attempts) else {
                throw RemoteError(
                    .configuration(
                        "max_attempts (AWS_MAX_ATTEMPTS or the profile's max_attempts) is '\(text)'; give a whole number of attempts from 1 to 100"
                    ), url: "retry settings", operation: "configuration")
            }
            configuration.retry.maxAttempts = attempts
        }
        if let text = environment["SHARDSTORE_RETRY_SECONDS"], !text.isEmpty {
            guard let seconds = Double(Self.trimmed(text)), seconds.isFinite, (0...86_400).contains(seconds) else {
                throw RemoteError(
                    .configuration(
                        "SHARDSTORE_RETRY_SECONDS is '\(text)'; give the seconds retries may take in all, from 0 to 86400"
                    ), url: "retry settings", operation: "configuration")
            }
            configuration.retry.totalSeconds = seconds
            provenance.append("retry time from SHARDSTORE_RETRY_SECONDS")
        }

        if noSignRequest {
            configuration.signing = .anonymous
            provenance.append("anonymous requests (no signing)")
        } else if profile == nil, let id = environment["AWS_ACCESS_KEY_ID"],
            let secret = environment["AWS_SECRET_ACCESS_KEY"],
            !id.isEmpty, !secret.isEmpty
        {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            configuration.signing = .credentials(
                AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token))
            provenance.append("credentials from AWS_ACCESS_KEY_ID")
        } else if let id = files.value("aws_access_key_id", profile: profileName),
            let secret = files.value("aws_secret_access_key", profile: profileName)
        {
            configuration.signing = .credentials(
                AWSCredentials(
                    accessKeyID: id, secretAccessKey: secret,
                    sessionToken: files.value("aws_session_token", profile: profileName)))
            provenance.append("credentials from profile \(profileName)")
        } else {
            configuration.signing = .unavailable(
                "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile "
                    + "(AWS_PROFILE) in ~/.aws/credentials, or read a public bucket with --no-sign-request")
        }
        configuration.provenance = provenance
        return configuration
    }

    /// `text` without the spaces and tabs around it.
    private static func trimmed(_ text: String) -> Substring {
        var s = Substring(text)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return s
    }

    /// `url` without a trailing slash, when it is an http or https URL without user information.
    static func validatedEndpoint(_ url: String) throws(RemoteError) -> String {
        let lower = url.lowercased()
        guard lower.hasPrefix("http://") || lower.hasPrefix("https://"), !url.contains("@"), !url.contains("?") else {
            throw RemoteError(
                .configuration(
                    "the S3 endpoint must be an http:// or https:// URL without credentials or a query, "
                        + "such as http://127.0.0.1:9000"),
                url: RemoteError.redact(url), operation: "configuration")
        }
        var trimmed = Substring(url)
        while trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return String(trimmed)
    }

    /// The URL a request for `location` goes to (`query`, already canonical, appended).
    ///
    /// - Complexity: O(n) in the length of the key.
    public func requestURL(for location: RemoteLocation, query: String = "") -> String {
        let q = query.isEmpty ? "" : "?" + query
        switch location {
        case .http(let url):
            return url + q
        case .s3(let bucket, let key):
            let encodedKey = awsPercentEncoded(key, keepSlash: true)
            let base = endpoint ?? "https://s3.\(region).amazonaws.com"
            let virtualHost: Bool
            switch addressing {
            case .path: virtualHost = false
            case .virtualHost: virtualHost = true
            case .automatic: virtualHost = endpoint == nil && Self.isVirtualHostable(bucket)
            }
            if virtualHost, let schemeEnd = base.firstRange(of: "://") {
                return base[..<schemeEnd.upperBound] + bucket + "." + base[schemeEnd.upperBound...] + "/" + encodedKey
                    + q
            }
            return base + "/" + awsPercentEncoded(bucket, keepSlash: false) + "/" + encodedKey + q
        }
    }

    /// A bucket name that can be a DNS label under TLS: 3 to 63 lower-case letters, digits and
    /// hyphens, no dots (a dot breaks the wildcard certificate).
    static func isVirtualHostable(_ bucket: String) -> Bool {
        (3...63).contains(bucket.utf8.count)
            && bucket.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
            && !bucket.hasPrefix("-") && !bucket.hasSuffix("-")
    }
}
