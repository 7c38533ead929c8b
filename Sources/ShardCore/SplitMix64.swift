/// SplitMix64: a small, fast, seeded generator whose output is the same on every machine and
/// every Swift version (unlike `SystemRandomNumberGenerator`). Used for seeded split ratios,
/// shuffles and samplers.
///
/// ```swift
/// var rng = SplitMix64(seed: 42)
/// var a = Array(0..<10)
/// a.shuffle(using: &rng)   // the same order on every run
/// ```
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator started from `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    ///
    /// - Complexity: O(1).
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<upperBound` (Lemire's method, no modulo bias), independent of
    /// the standard library's algorithms so results never change between Swift versions.
    public mutating func next(below upperBound: UInt64) -> UInt64 {
        precondition(upperBound > 0, "upperBound must be positive")
        var m = next().multipliedFullWidth(by: upperBound)
        if m.low < upperBound {
            let t = (0 &- upperBound) % upperBound
            while m.low < t { m = next().multipliedFullWidth(by: upperBound) }
        }
        return m.high
    }
}

extension Array {
    /// Fisher-Yates shuffle driven by `SplitMix64`, stable across Swift versions (the standard
    /// `shuffle(using:)` algorithm is not guaranteed to stay the same).
    ///
    /// - Complexity: O(n).
    public mutating func seededShuffle(using rng: inout SplitMix64) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next(below: UInt64(i + 1)))
            if i != j { swapAt(i, j) }
        }
    }
}

/// Named ratios such as `train=0.8,val=0.1,test=0.1`, and how many of `n` items each gets.
public struct SplitRatios: Sendable, Equatable {
    /// (name, ratio) in the order given.
    public var parts: [(name: String, ratio: Double)]

    public static func == (a: SplitRatios, b: SplitRatios) -> Bool {
        a.parts.map(\.name) == b.parts.map(\.name) && a.parts.map(\.ratio) == b.parts.map(\.ratio)
    }

    /// A ratio list that cannot be used.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// Parses `name=ratio[,name=ratio...]`. Ratios are in (0, 1] and add up to at most 1.
    ///
    /// - Throws: ``ParseError`` naming the bad part.
    public init(parsing text: String) throws(ParseError) {
        var parts: [(String, Double)] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard pair.count == 2, !pair[0].isEmpty else {
                throw ParseError(
                    description: "bad ratio '\(item)': write NAME=FRACTION, for example train=0.8,val=0.1,test=0.1")
            }
            guard let r = Double(pair[1]), r > 0, r <= 1 else {
                throw ParseError(
                    description: "bad ratio '\(item)': the fraction must be a number greater than 0 and at most 1")
            }
            let name = String(pair[0])
            guard !parts.contains(where: { $0.0 == name }) else {
                throw ParseError(description: "split '\(name)' is named twice in '\(text)'")
            }
            parts.append((name, r))
        }
        let sum = parts.reduce(0) { $0 + $1.1 }
        guard sum <= 1 + 1e-9 else {
            throw ParseError(description: "the ratios in '\(text)' add up to \(sum), more than 1")
        }
        self.parts = parts
    }

    /// How many of `n` items each part gets: `floor(n * ratio)` each, then the items left over
    /// (up to `round(n * sum)`) go one each to the parts with the largest remainders, earlier parts
    /// first on ties.
    ///
    /// ```swift
    /// try SplitRatios(parsing: "a=0.5,b=0.5").counts(of: 3)   // [2, 1]
    /// ```
    public func counts(of n: Int) -> [Int] {
        var counts = parts.map { Int((Double(n) * $0.ratio).rounded(.down)) }
        let sum = parts.reduce(0) { $0 + $1.ratio }
        let target = min(n, Int((Double(n) * sum).rounded()))
        var left = target - counts.reduce(0, +)
        let order = parts.indices.sorted {
            let ra = Double(n) * parts[$0].ratio - Double(counts[$0])
            let rb = Double(n) * parts[$1].ratio - Double(counts[$1])
            return ra != rb ? ra > rb : $0 < $1
        }
        var i = 0
        while left > 0, !order.isEmpty {
            counts[order[i % order.count]] += 1
            left -= 1
            i += 1
        }
        return counts
    }
}
