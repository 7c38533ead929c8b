/// What ingest does when the same (key, extension) occurs twice, in one shard or across shards
/// (`x.jpg` twice, or `x.JPG` next to `x.jpg`, since extensions are lower-cased).
public enum DuplicatePolicy: String, Sendable, CaseIterable {
    /// Stop with an error naming both locations (the default: nothing is dropped silently).
    case error
    /// Keep the first occurrence; later ones are counted and left out.
    case first
    /// Keep the last occurrence; earlier ones are counted and replaced.
    case last
    /// Keep every copy: a repeated extension starts a new sample with the same key. A lookup by
    /// that key is then ambiguous and lists the candidates; lookups by index always work.
    case keep
}
