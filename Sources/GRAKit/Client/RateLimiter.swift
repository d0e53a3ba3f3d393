/// A model's published rate limits: requests per minute and tokens per minute (`--rpm`,
/// `--tpm`, or `"rpm"`/`"tpm"` in a config entry). Nil: no limit of that kind.
public struct RateLimits: Sendable, Equatable {
    public var requestsPerMinute: Double?
    public var tokensPerMinute: Double?
    public init(requestsPerMinute: Double? = nil, tokensPerMinute: Double? = nil) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
    }
    public var isEmpty: Bool { requestsPerMinute == nil && tokensPerMinute == nil }
}

/// Spaces one model's requests so that they stay within its `RateLimits`, and pauses them when
/// the server says the limit is near (`x-ratelimit-remaining-*` headers).
///
/// Two token buckets, kept as theoretical arrival times (GCRA) with no burst: each request
/// reserves its place in both and is sent when both allow it, so requests are evenly spaced
/// at the rate (a burst would break a limit counted over a rolling window) — at 99 % of it:
/// the jitter of real send times otherwise lets a rolling window count one request too many
/// now and then (measured: 9 of 200 requests refused at 100 %, none at 99 %).
/// The token cost is estimated before sending (prompt bytes / 4 plus `max_tokens`) and
/// corrected with the reply's `usage`, so the bucket follows what the server counts.
final class RateLimiter: @unchecked Sendable {
    let limits: RateLimits
    private let lock = Mutex()
    private var requestTAT = 0.0
    private var tokenTAT = 0.0
    private var pausedUntil = 0.0
    /// The share of a published limit used.
    static let margin = 0.99

    init(limits: RateLimits) { self.limits = limits }

    /// Reserves a request costing about `tokens` at `now` and returns how long to wait before
    /// sending it (0: at once).
    func reserve(tokens: Int, now: Double) -> Double {
        lock.locked {
            var start = max(now, pausedUntil)
            if let rpm = limits.requestsPerMinute, rpm > 0 { start = max(start, requestTAT) }
            if let tpm = limits.tokensPerMinute, tpm > 0 { start = max(start, tokenTAT) }
            if let rpm = limits.requestsPerMinute, rpm > 0 {
                requestTAT = max(requestTAT, start) + 60 / (rpm * RateLimiter.margin)
            }
            if let tpm = limits.tokensPerMinute, tpm > 0 {
                tokenTAT = max(tokenTAT, start) + Double(max(tokens, 1)) * 60 / (tpm * RateLimiter.margin)
            }
            return max(0, start - now)
        }
    }

    /// Corrects the token bucket once the reply says what a request really cost.
    func correct(tokens delta: Int) {
        guard let tpm = limits.tokensPerMinute, tpm > 0, delta != 0 else { return }
        lock.locked { tokenTAT += Double(delta) * 60 / (tpm * RateLimiter.margin) }
    }

    /// Sends nothing more before `time` (the server said its budget is spent until then).
    func pause(until time: Double) {
        lock.locked { pausedUntil = max(pausedUntil, time) }
    }

    /// The requests a server's `x-ratelimit-*` headers say are left, and when the budgets reset.
    struct ServerHeaders: Sendable, Equatable {
        var remainingRequests: Int?
        var remainingTokens: Int?
        var resetRequests: Double?
        var resetTokens: Double?
        var isEmpty: Bool { remainingRequests == nil && remainingTokens == nil }
    }

    /// Pauses until the server's reset when its budget is nearly spent: no more requests left
    /// than are in flight already (`inFlight`), or fewer tokens left than the next request
    /// will likely cost (`nextTokens`).
    func heed(_ h: ServerHeaders, inFlight: Int, nextTokens: Int, now: Double) {
        if let left = h.remainingRequests, left <= inFlight, let reset = h.resetRequests {
            pause(until: now + reset)
        }
        if let left = h.remainingTokens, left < nextTokens, let reset = h.resetTokens {
            pause(until: now + reset)
        }
    }

    /// Seconds in a reset header: a plain number ("0.5"), or a Go-style duration as OpenAI sends
    /// it ("1s", "6m0s", "20ms", "1h2m3.5s"). Nil when it is neither.
    static func seconds(_ text: Substring) -> Double? {
        let s = text.trimmingWhitespace()
        if let plain = Double(s) { return plain >= 0 ? plain : nil }
        var total = 0.0
        var number = ""
        var i = s.startIndex
        var sawUnit = false
        while i < s.endIndex {
            let c = s[i]
            if c.isNumber || c == "." {
                number.append(c)
                i = s.index(after: i)
                continue
            }
            guard let value = Double(number) else { return nil }
            let rest = s[i...]
            let unit: Double
            if rest.hasPrefix("ms") {
                unit = 0.001
                i = s.index(i, offsetBy: 2)
            } else if c == "h" {
                unit = 3600
                i = s.index(after: i)
            } else if c == "m" {
                unit = 60
                i = s.index(after: i)
            } else if c == "s" {
                unit = 1
                i = s.index(after: i)
            } else {
                return nil
            }
            total += value * unit
            number = ""
            sawUnit = true
        }
        return sawUnit && number.isEmpty ? total : nil
    }
}
