extension WebDatasetName {
    /// The extension an `--ext TEXT` argument names, by one rule for every command (`get`, `cat`,
    /// `bench`, `export`, datasets): lower-cased, and a leading `.` dropped as a convenience
    /// (`--ext .JPG` names `jpg`), unless an extension spelled with that dot exists: by the key
    /// rule a member `y..png` has key `y` and extension `.png`, and `--ext .png` names it.
    ///
    /// ```swift
    /// WebDatasetName.requestedExtension(".JPG") { $0 == "jpg" }    // "jpg"
    /// WebDatasetName.requestedExtension(".png") { $0 == ".png" }   // ".png"
    /// ```
    ///
    /// - Parameters:
    ///   - text: the argument as given.
    ///   - exists: whether some member has this (lower-cased) extension; asked only when `text`
    ///     starts with a dot.
    /// - Throws: what `exists` throws.
    /// - Complexity: O(n) in the text's length, plus one call of `exists`.
    public static func requestedExtension(_ text: String, exists: (String) throws -> Bool) rethrows -> String {
        let lowered = text.lowercased()
        guard lowered.hasPrefix("."), try !exists(lowered) else { return lowered }
        return String(lowered.dropFirst())
    }
}
