import Foundation
import ShardRemote
import ShardTestSupport
import Testing

@Suite struct LocationTests {
    @Test func parsesS3HTTPAndLocal() throws {
        #expect(
            try ShardLocation(parsing: "s3://datasets/train/shard-000001.tar")
                == .remote(.s3(bucket: "datasets", key: "train/shard-000001.tar")))
        #expect(try ShardLocation(parsing: "S3://b/k") == .remote(.s3(bucket: "b", key: "k")))
        #expect(try ShardLocation(parsing: "s3://bucket") == .remote(.s3(bucket: "bucket", key: "")))
        #expect(try ShardLocation(parsing: "https://h:8443/a/b.tar") == .remote(.http("https://h:8443/a/b.tar")))
        #expect(try ShardLocation(parsing: "data/shard-000001.tar") == .local("data/shard-000001.tar"))
        #expect(try ShardLocation(parsing: "/abs/x.tar").isRemote == false)
        #expect(RemoteLocation.s3(bucket: "b", key: "a/c.tar").description == "s3://b/a/c.tar")
    }

    @Test func refusesMalformedLocationsSayingWhy() {
        let cases: [(String, String)] = [
            ("s3:///key", "no bucket name"),
            ("https://user:secret@host/x.tar", "user names and passwords do not belong in the URL"),
            ("http:///x", "no host"),
            ("s3://b/with space.tar", "spaces or control characters"),
            ("ftp://h/x", "expected s3://bucket/key"),
        ]
        for (text, reason) in cases {
            let error = remoteError { _ = try RemoteLocation(parsing: text) }
            #expect(error?.description.contains(reason) == true, "\(text): \(error?.description ?? "nil")")
            #expect(error?.description.contains("secret") == false)
        }
    }

    @Test func requestURLsArePathStyleForEndpointsAndVirtualHostForAWS() {
        var c = RemoteConfiguration(endpoint: "http://127.0.0.1:9000", region: "eu-west-1")
        let location = RemoteLocation.s3(bucket: "my-bucket", key: "a b/ü+&.tar")
        #expect(c.requestURL(for: location) == "http://127.0.0.1:9000/my-bucket/a%20b/%C3%BC%2B%26.tar")
        c.endpoint = nil
        #expect(c.requestURL(for: location) == "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/%C3%BC%2B%26.tar")
        #expect(
            c.requestURL(for: .s3(bucket: "dotted.bucket", key: "k"))
                == "https://s3.eu-west-1.amazonaws.com/dotted.bucket/k")
        c.addressing = .path
        #expect(
            c.requestURL(for: .s3(bucket: "my-bucket", key: "k")) == "https://s3.eu-west-1.amazonaws.com/my-bucket/k")
        #expect(c.requestURL(for: .http("http://h/x.tar")) == "http://h/x.tar")
    }

    @Test func redactsQueriesAndUserInformation() {
        #expect(RemoteError.redact("https://h/x.tar?X-Amz-Signature=abc") == "https://h/x.tar?…")
        #expect(RemoteError.redact("https://u:p@h/x.tar") == "https://h/x.tar")
    }
}

@Suite struct ConfigurationTests {
    @Test func environmentCredentialsRegionAndEndpoint() throws {
        let c = try RemoteConfiguration.resolve(environment: [
            "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET-VALUE",
            "AWS_SESSION_TOKEN": "TOKEN-VALUE", "AWS_DEFAULT_REGION": "ap-south-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000/",
        ])
        #expect(
            c.signing
                == .credentials(
                    AWSCredentials(accessKeyID: "AKID", secretAccessKey: "SECRET-VALUE", sessionToken: "TOKEN-VALUE")))
        #expect(c.region == "ap-south-1")
        #expect(c.endpoint == "http://127.0.0.1:9000")
        // Nothing that describes the configuration shows the secret or the token.
        for text in ["\(c.signing)", String(describing: c), String(reflecting: c), "\(c.provenance)"] {
            #expect(!text.contains("SECRET-VALUE") && !text.contains("TOKEN-VALUE"), "\(text)")
        }
    }

    @Test func retrySettingsFromTheEnvironmentAndTheProfile() throws {
        let defaults = try RemoteConfiguration.resolve(environment: ["HOME": "/nonexistent"]).retry
        #expect(defaults == RetryPolicy())
        let set = try RemoteConfiguration.resolve(environment: [
            "HOME": "/nonexistent", "AWS_MAX_ATTEMPTS": " 2 ", "SHARDSTORE_RETRY_SECONDS": "7.5",
        ])
        #expect(set.retry.maxAttempts == 2 && set.retry.totalSeconds == 7.5)
        #expect(set.provenance.contains("max_attempts from AWS_MAX_ATTEMPTS"))

        let directory = try TemporaryDirectory()
        try "[default]\nmax_attempts = 9\n".write(toFile: directory.path + "/config", atomically: true, encoding: .utf8)
        let profile = try RemoteConfiguration.resolve(environment: [
            "HOME": "/nonexistent", "AWS_CONFIG_FILE": directory.path + "/config",
            "AWS_SHARED_CREDENTIALS_FILE": directory.path + "/none",
        ])
        #expect(profile.retry.maxAttempts == 9)

        #expect(
            throws: RemoteError(
                .configuration(
                    "max_attempts (AWS_MAX_ATTEMPTS or the profile's max_attempts) is '0'; give a whole number of attempts from 1 to 100"
                ), url: "retry settings", operation: "configuration")
        ) { try RemoteConfiguration.resolve(environment: ["HOME": "/nonexistent", "AWS_MAX_ATTEMPTS": "0"]) }
        #expect(
            throws: RemoteError(
                .configuration(
                    "SHARDSTORE_RETRY_SECONDS is 'soon'; give the seconds retries may take in all, from 0 to 86400"),
                url: "retry settings", operation: "configuration")
        ) {
            try RemoteConfiguration.resolve(environment: ["HOME": "/nonexistent", "SHARDSTORE_RETRY_SECONDS": "soon"])
        }
    }

    @Test func profilesFromBothFilesAsTheAWSToolsReadThem() throws {
        let directory = try TemporaryDirectory()
        let credentials = directory.path + "/credentials"
        let config = directory.path + "/config"
        try """
        # comment
        [default]
        aws_access_key_id = DEFAULTID
        aws_secret_access_key = defaultsecret

        [work]
        aws_access_key_id=WORKID
        aws_secret_access_key=worksecret
        aws_session_token = worktoken
        """.write(toFile: credentials, atomically: true, encoding: .utf8)
        try """
        [default]
        region = us-west-2
        [profile work]
        region = eu-central-1
        endpoint_url = https://storage.example.com
        s3 =
            addressing_style = path
        [profile onlyconfig]
        aws_access_key_id = CFGID
        aws_secret_access_key = cfgsecret
        [sso-session x]
        region = nowhere
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let files = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config, "HOME": "/nonexistent"]

        let plain = try RemoteConfiguration.resolve(environment: files)
        #expect(
            plain.signing == .credentials(AWSCredentials(accessKeyID: "DEFAULTID", secretAccessKey: "defaultsecret")))
        #expect(plain.region == "us-west-2")
        #expect(plain.endpoint == nil)

        let work = try RemoteConfiguration.resolve(environment: files.merging(["AWS_PROFILE": "work"]) { $1 })
        #expect(
            work.signing
                == .credentials(
                    AWSCredentials(accessKeyID: "WORKID", secretAccessKey: "worksecret", sessionToken: "worktoken")))
        #expect(work.region == "eu-central-1")
        #expect(work.endpoint == "https://storage.example.com")

        let configOnly = try RemoteConfiguration.resolve(environment: files, profile: "onlyconfig")
        #expect(configOnly.signing == .credentials(AWSCredentials(accessKeyID: "CFGID", secretAccessKey: "cfgsecret")))
        #expect(configOnly.region == "us-east-1")

        // An explicit profile beats the environment's keys; AWS_REGION beats the profile.
        let explicit = try RemoteConfiguration.resolve(
            environment: files.merging([
                "AWS_ACCESS_KEY_ID": "ENVID", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_REGION": "sa-east-1",
            ]) { $1 },
            profile: "work")
        #expect(explicit.signing == work.signing)
        #expect(explicit.region == "sa-east-1")

        let missing = remoteError { _ = try RemoteConfiguration.resolve(environment: files, profile: "nope") }
        #expect(
            missing?.description.contains(
                "the AWS profile 'nope' is in neither the credentials file nor the config file") == true)

        let anonymous = try RemoteConfiguration.resolve(environment: files, noSignRequest: true)
        #expect(anonymous.signing == .anonymous)
    }

    @Test func noCredentialsFailsS3RequestsSayingWhatToSet() throws {
        let c = try RemoteConfiguration.resolve(environment: ["HOME": "/nonexistent"], endpoint: "http://127.0.0.1:1")
        let error = remoteError { _ = try RemoteClient(configuration: c).stat(.s3(bucket: "b", key: "k")) }
        #expect(error?.attempts == 0)
        #expect(
            error?.description
                == "s3://b/k (http://127.0.0.1:1/b/k): stat failed: no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY, or a profile (AWS_PROFILE) in ~/.aws/credentials, or read a public bucket with "
                + "--no-sign-request")
        let badEndpoint = remoteError {
            _ = try RemoteConfiguration.resolve(environment: [:], endpoint: "127.0.0.1:9000")
        }
        #expect(badEndpoint?.description.contains("must be an http:// or https:// URL") == true)
    }

    @Test func retryDelaysGrowAndStayWithinBounds() {
        let policy = RetryPolicy(maxAttempts: 8, initialDelay: 0.1, maxDelay: 1, multiplier: 2, totalSeconds: 10)
        for attempt in 1...8 {
            let full = min(0.1 * pow(2, Double(attempt - 1)), 1)
            for _ in 0..<20 {
                let d = policy.delay(afterAttempt: attempt)
                #expect(d >= full / 2 - 1e-9 && d <= full + 1e-9, "attempt \(attempt): \(d)")
            }
        }
        #expect(RetryPolicy.isRetryable(status: 503) && RetryPolicy.isRetryable(status: 429))
        #expect(!RetryPolicy.isRetryable(status: 403) && !RetryPolicy.isRetryable(status: 404))
    }
}
