import ShardCore

/// The rules that turn a sample's key and a member's extension into a file path inside a raw
/// export's folder (`<key>.<ext>`), and the checks that keep every path inside it.
///
/// A name is normalised, then judged component by component:
/// - empty components and `.` components in the folder part are dropped (`./000001.jpg` and
///   `a//b.jpg`, as `tar cf x.tar .` writes them, become `000001.jpg` and `a/b.jpg`);
/// - a name starting with `/` is refused ("is absolute"), and so is any `..` component;
/// - a component of more than 255 bytes (the file system's limit) or one holding a NUL byte is
///   refused;
/// - a file name that is `.` itself (the member `dir/.`) is refused: it names a folder.
///
/// ```swift
/// ExportPath.components(key: Array("./a/000001".utf8), ext: Array("jpg".utf8))
/// // .success([[a], [0,0,0,0,0,1,.,j,p,g]])
/// ```
enum ExportPath {
    /// The most bytes one path component may hold (`NAME_MAX` on Linux file systems).
    static let maxComponentBytes = 255

    private static let slash = UInt8(ascii: "/")
    private static let dot = UInt8(ascii: ".")

    /// Why a name was refused (the text of ``ExportError/UnsafeName/reason``).
    struct Refusal: Error, Equatable {
        var reason: String
    }

    /// The member name `key.ext` as raw bytes.
    static func memberName(key: [UInt8], ext: [UInt8]) -> [UInt8] {
        key + [dot] + ext
    }

    /// The normalised path of member `key.ext`, as components (folders, then the file name).
    ///
    /// - Complexity: O(name length).
    static func components(key: [UInt8], ext: [UInt8]) -> Result<[[UInt8]], Refusal> {
        let name = memberName(key: key, ext: ext)
        if name.first == slash { return .failure(Refusal(reason: "is absolute")) }
        var parts = name.split(separator: slash, omittingEmptySubsequences: false).map(Array.init)
        let file = parts.removeLast()
        var out: [[UInt8]] = []
        out.reserveCapacity(parts.count + 1)
        for part in parts where !(part.isEmpty || part == [dot]) {
            if let problem = componentProblem(part) { return .failure(problem) }
            out.append(part)
        }
        if file == [dot] {
            return .failure(Refusal(reason: "ends in the component '.', which names a folder, not a file"))
        }
        if let problem = componentProblem(file) { return .failure(problem) }
        out.append(file)
        return .success(out)
    }

    /// What is wrong with one path component, or nil.
    static func componentProblem(_ part: [UInt8]) -> Refusal? {
        if part == [dot, dot] { return Refusal(reason: "has a '..' component") }
        if part.contains(0) { return Refusal(reason: "holds a NUL byte") }
        if part.count > maxComponentBytes {
            return Refusal(
                reason: "has a component of \(part.count) bytes (a file system allows at most \(maxComponentBytes))")
        }
        return nil
    }

    /// Bytes shown to people: the text when it is valid UTF-8, `\xNN` for each byte that is not
    /// and for control characters (so a name with a newline stays on one line of an error); see
    /// `MessageText`.
    static func display<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        MessageText.escaped(bytes: bytes)
    }

    /// Components joined with `/`.
    static func joined(_ components: [[UInt8]]) -> [UInt8] {
        Array(components.joined(separator: [slash]))
    }
}

/// Checks that the files of a `files` layout export fit together: no two members write the same
/// file, and no file is also a folder of another member (`x.jpg` beside `x.jpg/y.png`, which
/// the webdataset key rule allows: the key of the second is `x.jpg/y`).
///
/// ```swift
/// var check = NameCheck()
/// check.add(key: Array("a/x".utf8), ext: "jpg", shard: 0)
/// let refused = check.refused   // [] when everything fits
/// ```
struct NameCheck {
    /// Where a path was first claimed: the member name and its shard number.
    struct Origin {
        var name: [UInt8]
        var shard: Int
    }

    /// The shard paths (as stored in the index), for messages.
    var shardNames: [String]
    /// Every file path (joined components) and who writes it.
    private(set) var files: [[UInt8]: Origin] = [:]
    /// Every folder path and the first member below it.
    private var folders: [[UInt8]: Origin] = [:]
    /// The names refused so far, in the order found.
    private(set) var refused: [ExportError.UnsafeName] = []

    init(shardNames: [String]) {
        self.shardNames = shardNames
    }

    /// Adds member `key.ext` from shard number `shard`.
    ///
    /// - Complexity: O(name length) expected.
    mutating func add(key: [UInt8], ext: [UInt8], shard: Int) {
        let name = ExportPath.memberName(key: key, ext: ext)
        let components: [[UInt8]]
        switch ExportPath.components(key: key, ext: ext) {
        case .failure(let refusal):
            refuse(name, shard, refusal.reason)
            return
        case .success(let c): components = c
        }
        let origin = Origin(name: name, shard: shard)
        let path = ExportPath.joined(components)
        if let other = files[path] {
            refuse(name, shard, "is written to the same file '\(ExportPath.display(path))' as \(describe(other))")
            return
        }
        if let other = folders[path] {
            refuse(name, shard, "is also the folder of \(describe(other))")
            return
        }
        // Folders, longest first; once one is known, its parents are too.
        var prefix = components.dropLast()
        while !prefix.isEmpty {
            let folder = ExportPath.joined(Array(prefix))
            if let other = files[folder] {
                refuse(other.name, other.shard, "is also the folder of \(describe(origin))")
                return
            }
            if folders[folder] != nil { break }
            folders[folder] = origin
            prefix.removeLast()
        }
        files[path] = origin
    }

    private func describe(_ origin: Origin) -> String {
        "'\(ExportPath.display(origin.name))' (in '\(shardNames[origin.shard])')"
    }

    private mutating func refuse(_ name: [UInt8], _ shard: Int, _ reason: String) {
        refused.append(
            ExportError.UnsafeName(path: ExportPath.display(name), reason: reason, shard: shardNames[shard]))
    }
}
