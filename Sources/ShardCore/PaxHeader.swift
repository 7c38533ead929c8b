/// The records of a pax extended header (`x`, `X`) or global header (`g`) that the scanner honours.
///
/// Records are `"%d %s=%s\n"`, the length counting the whole record including its own digits.
/// Only `path`, `size` and the `GNU.sparse.` family matter for an index; everything else is
/// skipped after its framing has been checked.
struct PaxHeader: Sendable {
    /// A value a pax record sets for a header field.
    enum Override<Value: Sendable>: Sendable {
        /// No record for this field: the header field (or a global record) stands.
        case unset
        /// A record with an empty value: the header field stands, globals do not apply.
        case cleared
        /// A record with a value.
        case set(Value)
    }

    /// `path`: the entry's name, raw bytes.
    var path: Override<[UInt8]> = .unset
    /// `size`: the entry's data size.
    var size: Override<Int64> = .unset
    /// Whether any `GNU.sparse.*` record was seen.
    var isSparse = false

    /// Parses the records in `data` into `self`, later records overriding earlier ones.
    ///
    /// Parsing stops at a NUL where a record would start (padding some writers leave).
    ///
    /// - Throws: a description of the first malformed record.
    /// - Complexity: O(`data.count`); one allocation for a `path` value.
    mutating func parse(_ data: UnsafeRawBufferPointer) throws(PaxRecordError) {
        var start = 0
        while start < data.count, data[start] != 0 {
            var cursor = start
            var length = 0
            while cursor < data.count, let digit = Self.decimalDigit(data[cursor]) {
                guard length <= (Int.max - 9) / 10 else {
                    throw PaxRecordError("record at byte \(start) declares an absurd length")
                }
                length = length * 10 + digit
                cursor += 1
            }
            guard cursor > start else {
                let found = Self.quoted(data, start..<min(start + 8, data.count))
                throw PaxRecordError(
                    "record at byte \(start) does not start with a decimal length (found \(found))")
            }
            guard cursor < data.count, data[cursor] == 0x20 else {
                throw PaxRecordError("record at byte \(start) has no space after its length")
            }
            let keyStart = cursor + 1
            // The shortest record is "<digits> k=\n".
            guard length >= keyStart - start + 3 else {
                throw PaxRecordError(
                    "record at byte \(start) declares length \(length), too short for a keyword")
            }
            guard length <= data.count - start else {
                let remaining = data.count - start
                throw PaxRecordError(
                    "record at byte \(start) declares length \(length) but only \(remaining) bytes remain"
                )
            }
            let end = start + length
            guard data[end - 1] == 0x0a else {
                throw PaxRecordError(
                    "record at byte \(start) (length \(length)) does not end with a newline")
            }
            var equals = keyStart
            while equals < end - 1, data[equals] != 0x3d { equals += 1 }
            guard equals < end - 1 else {
                throw PaxRecordError("record at byte \(start) has no '=' after its keyword")
            }
            guard equals > keyStart else {
                throw PaxRecordError("record at byte \(start) has an empty keyword")
            }
            try apply(
                keyword: UnsafeRawBufferPointer(rebasing: data[keyStart..<equals]),
                value: UnsafeRawBufferPointer(rebasing: data[(equals + 1)..<(end - 1)]),
                recordStart: start)
            start = end
        }
    }

    private mutating func apply(
        keyword: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, recordStart: Int
    ) throws(PaxRecordError) {
        if keyword.elementsEqual("path".utf8) {
            path = value.isEmpty ? .cleared : .set([UInt8](value))
        } else if keyword.elementsEqual("size".utf8) {
            guard !value.isEmpty else {
                size = .cleared
                return
            }
            var number: Int64 = 0
            for byte in value {
                let digit = Self.decimalDigit(byte)
                let (shifted, overflow) = number.multipliedReportingOverflow(by: 10)
                let (sum, carry) = shifted.addingReportingOverflow(Int64(digit ?? 0))
                guard digit != nil, !overflow, !carry else {
                    let shown = Self.quoted(value, 0..<min(value.count, 32))
                    throw PaxRecordError(
                        "record at byte \(recordStart): size \(shown) is not a decimal number"
                            + " that fits in 64 bits")
                }
                number = sum
            }
            size = .set(number)
        } else if keyword.starts(with: "GNU.sparse.".utf8) {
            isSparse = true
        }
    }

    /// Applies the records of an `x` header over this one (later records win).
    mutating func merge(_ later: PaxHeader) {
        if case .unset = later.path {} else { path = later.path }
        if case .unset = later.size {} else { size = later.size }
        isSparse = isSparse || later.isSparse
    }

    private static func decimalDigit(_ byte: UInt8) -> Int? {
        let digit = byte &- UInt8(ascii: "0")
        return digit < 10 ? Int(digit) : nil
    }

    /// Bytes shown in an error message: printable ASCII as is, the rest as `\xNN`.
    private static func quoted(_ data: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        var text = "\""
        for byte in data[range] {
            if byte >= 0x20, byte < 0x7f, byte != 0x22, byte != 0x5c {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let hex = String(byte, radix: 16)
                text += "\\x" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return text + "\""
    }
}

/// Why a pax record is malformed, before the scanner adds the header's offset.
struct PaxRecordError: Error {
    var detail: String
    init(_ detail: String) { self.detail = detail }
}
