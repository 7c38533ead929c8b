/// Just enough XML for S3's answers: elements (namespace prefixes dropped, attributes skipped),
/// character data with entities (`&amp;` `&lt;` `&gt;` `&quot;` `&apos;`, `&#N;`, `&#xH;`) and
/// CDATA sections unescaped; the declaration, comments, processing instructions and DOCTYPE
/// skipped.
///
/// ```swift
/// try MiniXML.forEachElement(bytes) { path, text in
///     if path == ["ListBucketResult", "Contents", "Key"] { keys.append(text) }
/// }
/// ```
enum MiniXML {
    struct Malformed: Error {
        let reason: String
        let offset: Int
    }

    /// Calls `body` at the end of every element with the names of the open elements from the root
    /// down to it, and its own character data (unescaped; the text of child elements excluded).
    ///
    /// - Throws: ``Malformed`` for an unclosed tag, a mismatched end tag, or an unknown entity.
    /// - Complexity: O(n) in the size of the document.
    static func forEachElement(_ bytes: [UInt8], _ body: (_ path: [String], _ text: String) throws -> Void) throws {
        var path: [String] = []
        var texts: [[UInt8]] = []
        var i = 0
        let n = bytes.count
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard needle.count <= n else { return nil }
            var j = start
            while j + needle.count <= n {
                if bytes[j] == needle[0] && Array(bytes[j..<(j + needle.count)]) == needle { return j }
                j += 1
            }
            return nil
        }
        while i < n {
            if bytes[i] != UInt8(ascii: "<") {
                let end = bytes[i...].firstIndex(of: UInt8(ascii: "<")) ?? n
                if !texts.isEmpty { texts[texts.count - 1] += try unescape(bytes[i..<end], at: i) }
                i = end
                continue
            }
            if bytes[i...].starts(with: Array("<![CDATA[".utf8)) {
                guard let end = find(Array("]]>".utf8), from: i + 9) else {
                    throw Malformed(reason: "unclosed CDATA", offset: i)
                }
                if !texts.isEmpty { texts[texts.count - 1] += bytes[(i + 9)..<end] }
                i = end + 3
                continue
            }
            if bytes[i...].starts(with: Array("<!--".utf8)) {
                guard let end = find(Array("-->".utf8), from: i + 4) else {
                    throw Malformed(reason: "unclosed comment", offset: i)
                }
                i = end + 3
                continue
            }
            guard let close = bytes[i...].firstIndex(of: UInt8(ascii: ">")) else {
                throw Malformed(reason: "unclosed tag", offset: i)
            }
            let inner = bytes[(i + 1)..<close]
            i = close + 1
            guard let first = inner.first else { throw Malformed(reason: "empty tag", offset: close - 1) }
            if first == UInt8(ascii: "?") || first == UInt8(ascii: "!") { continue }
            if first == UInt8(ascii: "/") {
                let name = elementName(inner.dropFirst())
                guard let open = path.last, open == name else {
                    throw Malformed(reason: "end tag </\(name)> does not close <\(path.last ?? "")>", offset: close)
                }
                try body(path, String(decoding: texts.removeLast(), as: UTF8.self))
                path.removeLast()
                continue
            }
            let selfClosing = inner.last == UInt8(ascii: "/")
            path.append(elementName(selfClosing ? inner.dropLast() : inner))
            texts.append([])
            if selfClosing {
                try body(path, "")
                path.removeLast()
                texts.removeLast()
            }
        }
        guard path.isEmpty else { throw Malformed(reason: "<\(path.last!)> is never closed", offset: n) }
    }

    /// The element name of a tag's inside: up to the first space, without a namespace prefix.
    private static func elementName(_ inner: ArraySlice<UInt8>) -> String {
        let end = inner.firstIndex { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D } ?? inner.endIndex
        var name = inner[inner.startIndex..<end]
        if let colon = name.firstIndex(of: UInt8(ascii: ":")) { name = name[(colon + 1)...] }
        return String(decoding: name, as: UTF8.self)
    }

    /// Character data with its entity and character references replaced.
    static func unescape(_ text: ArraySlice<UInt8>, at offset: Int) throws -> [UInt8] {
        guard text.contains(UInt8(ascii: "&")) else { return Array(text) }
        var out: [UInt8] = []
        out.reserveCapacity(text.count)
        var i = text.startIndex
        while i < text.endIndex {
            let byte = text[i]
            guard byte == UInt8(ascii: "&") else {
                out.append(byte)
                i += 1
                continue
            }
            guard let semicolon = text[i...].prefix(12).firstIndex(of: UInt8(ascii: ";")) else {
                throw Malformed(reason: "'&' without an entity", offset: offset + i - text.startIndex)
            }
            let name = String(decoding: text[(i + 1)..<semicolon], as: UTF8.self)
            switch name {
            case "amp": out.append(UInt8(ascii: "&"))
            case "lt": out.append(UInt8(ascii: "<"))
            case "gt": out.append(UInt8(ascii: ">"))
            case "quot": out.append(UInt8(ascii: "\""))
            case "apos": out.append(UInt8(ascii: "'"))
            default:
                var scalar: UInt32?
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    scalar = UInt32(name.dropFirst(2), radix: 16)
                } else if name.hasPrefix("#") {
                    scalar = UInt32(name.dropFirst(), radix: 10)
                }
                guard let scalar, let s = Unicode.Scalar(scalar) else {
                    throw Malformed(reason: "unknown entity &\(name);", offset: offset + i - text.startIndex)
                }
                out.append(contentsOf: Array(String(Character(s)).utf8))
            }
            i = semicolon + 1
        }
        return out
    }
}

/// An S3 error answer's code and message (`<Error><Code>…</Code><Message>…</Message></Error>`);
/// nils when the body is empty or not such a document.
enum S3ErrorBody {
    static func parse(_ body: [UInt8]) -> (code: String?, message: String?) {
        guard !body.isEmpty else { return (nil, nil) }
        var code: String?
        var message: String?
        try? MiniXML.forEachElement(body) { path, text in
            if path == ["Error", "Code"] { code = text }
            if path == ["Error", "Message"] { message = text }
        }
        return (code, message.map { String($0.prefix(300)) })
    }
}
