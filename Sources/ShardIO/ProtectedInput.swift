#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A file a command reads, which its output must not replace: the index, its journal, its
/// location file, a shard.
public struct ProtectedInput: Sendable, Equatable {
    /// The path as the command knows it.
    public var path: String
    /// What it is, for messages ("the index", "a shard of the index").
    public var role: String

    /// A protected file: `path` as the command knows it, `role` for messages.
    public init(path: String, role: String) {
        self.path = path
        self.role = role
    }

    /// The first of `inputs` that writing `destination` would replace: the same file by real
    /// path (symbolic links resolved; for a path that does not exist yet, its folder's real path
    /// and its name), or, when `writesFolder`, an input inside the folder `destination`.
    ///
    /// ```swift
    /// ProtectedInput.overwritten(by: "ds/../ds/index.sqlite", inputs: [ProtectedInput(path: "ds/index.sqlite", role: "the index")])
    /// // the index
    /// ```
    ///
    /// - Complexity: a few `realpath` calls per input.
    public static func overwritten(by destination: String, inputs: [ProtectedInput], writesFolder: Bool = false)
        -> ProtectedInput?
    {
        let targets = forms(of: destination)
        guard !targets.isEmpty else { return nil }
        for input in inputs {
            for form in forms(of: input.path) {
                if targets.contains(form) { return input }
                if writesFolder, targets.contains(where: { form.hasPrefix($0 == "/" ? "/" : $0 + "/") }) {
                    return input
                }
            }
        }
        return nil
    }

    /// The real path of `path` when it exists, and its folder's real path joined with its name
    /// (what a new file of that name would be).
    private static func forms(of path: String) -> Set<String> {
        var out = Set<String>()
        if let real = try? Paths.real(path) { out.insert(real) }
        if let canonical = try? Paths.canonicalFile(path) { out.insert(canonical) }
        return out
    }
}
