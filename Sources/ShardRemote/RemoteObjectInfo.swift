/// What a server says about an object: its size, ETag and modification time (from a HEAD, a GET's
/// headers, or a listing).
///
/// ```swift
/// let info = try client.stat(.s3(bucket: "datasets", key: "train/shard-000001.tar"))
/// info.size        // 104857600
/// info.etag        // "\"9b2cf535f27731c974343645a3985328\"" (quotes included, as If-Match wants it)
/// ```
public struct RemoteObjectInfo: Sendable, Hashable {
    /// The object.
    public var location: RemoteLocation
    /// Its size in bytes.
    public var size: Int64
    /// Its ETag as the server wrote it (quotes included; `W/` for a weak one), if it sent one.
    public var etag: String?
    /// Its modification time in seconds since 1970 (UTC), if the server sent one that parses.
    public var lastModified: Int64?
    /// The modification time as the server wrote it (an HTTP date, or ISO 8601 in listings).
    public var lastModifiedText: String?

    /// Makes an info.
    public init(
        location: RemoteLocation, size: Int64, etag: String?, lastModified: Int64? = nil,
        lastModifiedText: String? = nil
    ) {
        self.location = location
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
        self.lastModifiedText = lastModifiedText
    }
}

/// Parsing of the two date forms S3 uses.
enum HTTPDate {
    /// Seconds since 1970 of an HTTP date (`Wed, 21 Oct 2015 07:28:00 GMT`, RFC 9110's preferred
    /// form) or an ISO 8601 UTC time (`2015-10-21T07:28:00.000Z`); nil for anything else.
    static func parse(_ text: String) -> Int64? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let t = text.trimmingWhitespace()
        if t.first?.isNumber == true {
            // 2015-10-21T07:28:00.000Z
            let parts = t.split(whereSeparator: { "-T:.Z".contains($0) })
            guard parts.count >= 6, let y = Int64(parts[0]), let mo = Int64(parts[1]), let d = Int64(parts[2]),
                let h = Int64(parts[3]), let mi = Int64(parts[4]), let s = Int64(parts[5])
            else { return nil }
            return epochSeconds(y, mo, d, h, mi, s)
        }
        let parts = t.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "," })
        guard parts.count >= 7, let d = Int64(parts[1]), let moIndex = months.firstIndex(of: String(parts[2])),
            let y = Int64(parts[3]), let h = Int64(parts[4]), let mi = Int64(parts[5]), let s = Int64(parts[6])
        else { return nil }
        return epochSeconds(y, Int64(moIndex + 1), d, h, mi, s)
    }

    /// Seconds since 1970 of a proleptic Gregorian UTC time (days from civil, H. Hinnant's method).
    static func epochSeconds(_ y0: Int64, _ m: Int64, _ d: Int64, _ h: Int64, _ mi: Int64, _ s: Int64) -> Int64? {
        guard (1...12).contains(m), (1...31).contains(d), (0...23).contains(h), (0...59).contains(mi),
            (0...60).contains(s)
        else { return nil }
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + h * 3600 + mi * 60 + s
    }
}
