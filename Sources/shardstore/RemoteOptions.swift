import ArgumentParser
import ShardStore

/// How remote shards (`s3://`, `https://`) are reached: what the AWS tools read from the
/// environment and `~/.aws`, overridden by these flags.
struct RemoteOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The S3 endpoint for s3:// shards on S3-compatible storage (MinIO, Ceph, R2; path-style requests), instead of AWS (also AWS_ENDPOINT_URL).",
            valueName: "url"))
    var endpoint: String?

    @Option(
        help: ArgumentHelp(
            "The AWS profile in ~/.aws/credentials and ~/.aws/config to sign S3 requests with (also AWS_PROFILE).",
            valueName: "name"))
    var profile: String?

    @Option(help: ArgumentHelp("The region S3 requests are signed for (also AWS_REGION).", valueName: "region"))
    var region: String?

    @Flag(help: "Send S3 requests unsigned, for public buckets.")
    var noSignRequest = false

    @Option(
        help: ArgumentHelp(
            "A file of CA certificates to verify HTTPS servers with (a private CA; also AWS_CA_BUNDLE). Certificates are always verified.",
            valueName: "file"))
    var caBundle: String?

    @Option(
        help: ArgumentHelp(
            "Requests sent for one read at most, the first included, when connections fail or servers answer 429, 500, 502, 503 or 504 (default 5).",
            valueName: "n"))
    var attempts: Int?

    @Option(
        help: ArgumentHelp(
            "Seconds after a read's first request within which it may be retried (default 60).", valueName: "seconds"))
    var retrySeconds: Double?

    func validate() throws {
        if let attempts, !(1...100).contains(attempts) {
            throw ValidationError("Please give --attempts a number from 1 to 100, got \(attempts).")
        }
        if let retrySeconds, !(retrySeconds >= 0 && retrySeconds <= 86400) {
            throw ValidationError(
                "Please give --retry-seconds a number of seconds from 0 to 86400, got \(retrySeconds).")
        }
    }

    /// The configuration the flags make, or nil when none is given (it is then resolved from the
    /// environment and the AWS files, only if a shard is remote).
    func configuration() throws -> RemoteConfiguration? {
        guard
            endpoint != nil || profile != nil || region != nil || noSignRequest || caBundle != nil || attempts != nil
                || retrySeconds != nil
        else { return nil }
        var configuration = try RemoteConfiguration.resolve(
            endpoint: endpoint, profile: profile, region: region, noSignRequest: noSignRequest, caBundle: caBundle)
        if let attempts { configuration.retry.maxAttempts = attempts }
        if let retrySeconds { configuration.retry.totalSeconds = retrySeconds }
        return configuration
    }
}
