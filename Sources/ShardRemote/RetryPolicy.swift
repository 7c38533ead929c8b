#if canImport(Glibc)
    import Glibc
#endif

/// When a failed request is sent again: on connection errors, timeouts, and HTTP 429, 500, 502,
/// 503 and 504, up to ``maxAttempts`` requests in all and within ``totalSeconds`` from the
/// first, waiting an exponentially growing delay with jitter between them. Other failures (403,
/// 404, 412, ...) are never retried.
///
/// ```swift
/// var policy = RetryPolicy()          // 5 attempts, 0.1 s doubling to at most 5 s, 60 s in all
/// policy.maxAttempts = 10
/// RetryPolicy.none                     // one attempt
/// ```
public struct RetryPolicy: Sendable, Equatable {
    /// The most requests sent for one operation, the first included (at least 1).
    public var maxAttempts: Int
    /// The delay before the second attempt, in seconds.
    public var initialDelay: Double
    /// The longest delay between two attempts, in seconds.
    public var maxDelay: Double
    /// What each delay is multiplied by for the next.
    public var multiplier: Double
    /// No attempt starts later than this many seconds after the first one.
    public var totalSeconds: Double

    /// Makes a policy; the defaults suit object storage that throttles now and then.
    public init(
        maxAttempts: Int = 5, initialDelay: Double = 0.1, maxDelay: Double = 5, multiplier: Double = 2,
        totalSeconds: Double = 60
    ) {
        precondition(maxAttempts >= 1, "a retry policy needs at least one attempt")
        precondition(initialDelay >= 0 && maxDelay >= 0 && multiplier >= 1 && totalSeconds >= 0)
        self.maxAttempts = maxAttempts
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.multiplier = multiplier
        self.totalSeconds = totalSeconds
    }

    /// One attempt, no retries.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// Whether a response with this HTTP status is worth sending again.
    public static func isRetryable(status: Int) -> Bool { [429, 500, 502, 503, 504].contains(status) }

    /// The wait after attempt `attempt` (1 for the first) failed, in seconds: half of the
    /// exponential delay fixed, the other half random ("equal jitter"), so that many clients
    /// throttled at once do not come back at once.
    public func delay<G: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout G) -> Double {
        var d = initialDelay
        var i = 1
        while i < attempt && d < maxDelay {
            d *= multiplier
            i += 1
        }
        d = min(d, maxDelay)
        return d / 2 + Double.random(in: 0...1, using: &generator) * d / 2
    }

    /// ``delay(afterAttempt:using:)`` with the system's random numbers.
    public func delay(afterAttempt attempt: Int) -> Double {
        var g = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, using: &g)
    }
}

/// A monotonic clock in seconds (CLOCK_MONOTONIC), for retry budgets and polling deadlines.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Sleeps `seconds` (restarting after signals) on the calling thread.
func sleepSeconds(_ seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// The attempts of one operation under a ``RetryPolicy``: counts them and answers whether a
/// failure may be retried (and after how long) within the budget.
struct RetryBudget {
    let policy: RetryPolicy
    let start = monotonicSeconds()
    private(set) var attempts = 0

    init(_ policy: RetryPolicy) { self.policy = policy }

    /// Records that an attempt is being sent.
    mutating func begin() { attempts += 1 }

    /// The delay before the next attempt, or nil when the attempts or the time are used up.
    func nextDelay() -> Double? {
        guard attempts < policy.maxAttempts else { return nil }
        let d = policy.delay(afterAttempt: attempts)
        guard monotonicSeconds() + d - start <= policy.totalSeconds else { return nil }
        return d
    }
}
