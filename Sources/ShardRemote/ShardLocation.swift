/// Where a shard lives: a local file, or an object behind a URL (``RemoteLocation``).
///
/// Anything that does not start with `s3://`, `http://` or `https://` is a local path.
///
/// ```swift
/// try ShardLocation(parsing: "s3://datasets/train/shard-000001.tar")  // .remote(.s3(bucket: "datasets", key: "train/shard-000001.tar"))
/// try ShardLocation(parsing: "/data/shard-000001.tar")                // .local("/data/shard-000001.tar")
/// ```
public enum ShardLocation: Sendable, Hashable, CustomStringConvertible {
    /// A file on this machine.
    case local(String)
    /// An object in S3-compatible storage or on a web server.
    case remote(RemoteLocation)

    /// Parses `text`: a remote location when it has an `s3`, `http` or `https` scheme, otherwise a
    /// local path (kept as written).
    ///
    /// - Throws: ``RemoteError`` (`.invalidLocation`) for a remote location that is malformed.
    /// - Complexity: O(n) in the length of `text`.
    public init(parsing text: String) throws(RemoteError) {
        if RemoteLocation.hasRemoteScheme(text) {
            self = .remote(try RemoteLocation(parsing: text))
        } else {
            self = .local(text)
        }
    }

    /// Whether the location is remote.
    public var isRemote: Bool {
        if case .remote = self { return true }
        return false
    }

    /// The path, or the remote location's text (``RemoteLocation/description``).
    public var description: String {
        switch self {
        case .local(let path): return path
        case .remote(let remote): return remote.description
        }
    }
}

/// An object behind a URL: an S3 bucket and key (signed with SigV4 unless anonymous, sent to the
/// endpoint ``RemoteConfiguration`` resolves), or a plain `http`/`https` URL (never signed).
///
/// ```swift
/// let shard = try RemoteLocation(parsing: "s3://datasets/train/shard-000001.tar")
/// shard.description  // "s3://datasets/train/shard-000001.tar"
/// ```
public enum RemoteLocation: Sendable, Hashable, CustomStringConvertible {
    /// An object in S3-compatible storage. The key may be empty only for listings (a prefix).
    case s3(bucket: String, key: String)
    /// An `http://` or `https://` URL, as written (its path already percent-encoded).
    case http(String)

    /// Whether `text` starts with a scheme that ``RemoteLocation`` handles (`s3`, `http`,
    /// `https`, in any case).
    public static func hasRemoteScheme(_ text: String) -> Bool {
        let lower = text.prefix(8).lowercased()
        return lower.hasPrefix("s3://") || lower.hasPrefix("http://") || lower.hasPrefix("https://")
    }

    /// Parses `s3://bucket/key`, `http://host[:port]/path` or `https://host[:port]/path`.
    ///
    /// ```swift
    /// try RemoteLocation(parsing: "https://example.org/data/shard-000001.tar")  // .http(...)
    /// ```
    ///
    /// - Throws: ``RemoteError`` (`.invalidLocation`) naming what is wrong: an unknown scheme, an
    ///   empty bucket or host, whitespace, or credentials written into the URL (`user:pass@`,
    ///   which would end up in messages and in the index: use the AWS variables or a profile).
    /// - Complexity: O(n) in the length of `text`.
    public init(parsing text: String) throws(RemoteError) {
        func invalid(_ reason: String) -> RemoteError {
            RemoteError(.invalidLocation(reason), url: RemoteError.redact(text), operation: "parse")
        }
        if text.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            throw invalid("a location must not contain spaces or control characters (percent-encode them)")
        }
        let lower = text.lowercased()
        if lower.hasPrefix("s3://") {
            let rest = text.dropFirst(5)
            let bucket: Substring
            let key: Substring
            if let slash = rest.firstIndex(of: "/") {
                bucket = rest[..<slash]
                key = rest[rest.index(after: slash)...]
            } else {
                bucket = rest
                key = ""
            }
            guard !bucket.isEmpty else { throw invalid("no bucket name after s3://") }
            guard !bucket.contains("@"), !bucket.contains(":") else {
                throw invalid(
                    "the bucket name '\(bucket)' contains '@' or ':'; credentials go in the AWS variables or a profile")
            }
            self = .s3(bucket: String(bucket), key: String(key))
        } else if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let schemeEnd = text.index(text.startIndex, offsetBy: lower.hasPrefix("http://") ? 7 : 8)
            let rest = text[schemeEnd...]
            let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
            guard !authority.isEmpty else { throw invalid("no host after the scheme") }
            guard !authority.contains("@") else {
                throw invalid(
                    "user names and passwords do not belong in the URL; for S3 use s3:// with credentials from the AWS variables or a profile"
                )
            }
            guard !text.contains("#") else { throw invalid("a fragment ('#') has no meaning in a shard URL") }
            self = .http(text)
        } else {
            throw invalid("expected s3://bucket/key, http:// or https://")
        }
    }

    /// The location as written: `s3://bucket/key` or the URL.
    public var description: String {
        switch self {
        case .s3(let bucket, let key): return "s3://\(bucket)/\(key)"
        case .http(let url): return url
        }
    }

    /// Whether this is an S3 object.
    public var isS3: Bool {
        if case .s3 = self { return true }
        return false
    }
}

/// Percent-encoding as SigV4 canonicalizes it: every byte of the UTF-8 text except the
/// unreserved characters (`A-Z a-z 0-9 - _ . ~`), and `/` when `keepSlash`, becomes `%XX` with
/// upper-case hex digits. A key encoded this way is already canonical, whatever libcurl does with
/// it when signing.
func awsPercentEncoded(_ text: String, keepSlash: Bool) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
            UInt8(ascii: "~"):
            out.append(byte)
        case UInt8(ascii: "/") where keepSlash:
            out.append(byte)
        default:
            out.append(UInt8(ascii: "%"))
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 15)])
        }
    }
    return String(decoding: out, as: UTF8.self)
}
