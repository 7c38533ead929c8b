/// The version of ShardStore, recorded in every index it writes.
public enum ShardStoreVersion {
    /// Semantic version string.
    public static let string = "0.1.0"
}
