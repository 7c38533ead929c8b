/// An AWS access key: the key ID, the secret, and a session token for temporary credentials.
///
/// Its descriptions never show the secret or the token, so printing or dumping a configuration
/// cannot leak them.
///
/// ```swift
/// let credentials = AWSCredentials(accessKeyID: "AKIA...", secretAccessKey: "...")
/// "\(credentials)"  // "AWSCredentials(AKIA..., secret hidden)"
/// ```
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The access key ID (`AWS_ACCESS_KEY_ID`).
    public var accessKeyID: String
    /// The secret access key (`AWS_SECRET_ACCESS_KEY`).
    public var secretAccessKey: String
    /// The session token of temporary credentials (`AWS_SESSION_TOKEN`), sent as
    /// `x-amz-security-token`.
    public var sessionToken: String?

    /// Makes credentials.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// The key ID with the secret (and token) hidden.
    public var description: String {
        "AWSCredentials(\(accessKeyID), secret hidden\(sessionToken == nil ? "" : ", session token hidden"))"
    }

    /// The same as ``description``: the secret hidden.
    public var debugDescription: String { description }

    /// A mirror with the key ID only, so `dump` and debuggers do not show the secret.
    public var customMirror: Mirror { Mirror(self, children: ["accessKeyID": accessKeyID], displayStyle: .struct) }

    /// `text` with every occurrence of the secret and the session token replaced by `[redacted]`:
    /// for text that came from a server, which might echo what it was sent.
    func scrub(_ text: String) -> String {
        var out = text
        for secret in [secretAccessKey, sessionToken ?? ""] where secret.count >= 4 {
            out = out.replacing(secret, with: "[redacted]")
        }
        return out
    }
}

/// How S3 requests are authorized.
public enum S3Signing: Sendable, Equatable, CustomStringConvertible {
    /// Unsigned requests, for public buckets (`--no-sign-request`).
    case anonymous
    /// SigV4 with these credentials.
    case credentials(AWSCredentials)
    /// No credentials were found; S3 requests fail with this reason (plain HTTP ones still work).
    case unavailable(String)

    /// How requests are authorized, credentials hidden.
    public var description: String {
        switch self {
        case .anonymous: return "anonymous"
        case .credentials(let c): return c.description
        case .unavailable(let reason): return "no credentials (\(reason))"
        }
    }
}
