import Testing

@testable import GRAKit

@Suite("Rate limits (--rpm, --tpm, x-ratelimit headers)")
struct RateLimiterTests {
    /// Requests are spaced evenly at 99 % of the rate, from the first one on.
    @Test func requestsAreSpacedAtTheRate() {
        let l = RateLimiter(limits: RateLimits(requestsPerMinute: 600))
        let delays = (0..<5).map { _ in l.reserve(tokens: 1, now: 100) }
        #expect(delays.map { ($0 * 1000).rounded() } == [0, 101, 202, 303, 404])
        // Later, once the bucket has caught up, a request goes at once.
        #expect(l.reserve(tokens: 1, now: 200) == 0)
    }

    /// Tokens: a request reserves its estimate; the reply's usage corrects the bucket.
    @Test func tokensAreReservedThenCorrected() {
        let l = RateLimiter(limits: RateLimits(tokensPerMinute: 6000))  // 99 tokens a second
        #expect(l.reserve(tokens: 495, now: 0) == 0)
        #expect(abs(l.reserve(tokens: 99, now: 0) - 5) < 1e-9)  // after the first one's 495
        // The first really cost 198, not 495: 3 s are given back.
        l.correct(tokens: -297)
        #expect(abs(l.reserve(tokens: 99, now: 0) - 3) < 1e-9)
        // Both limits: the later of the two decides.
        let both = RateLimiter(limits: RateLimits(requestsPerMinute: 60, tokensPerMinute: 60_000))
        _ = both.reserve(tokens: 10, now: 0)
        #expect(abs(both.reserve(tokens: 10, now: 0) - 1 / 0.99) < 1e-9)
    }

    /// A server that says its budget is spent (no more requests left than are in flight, or
    /// fewer tokens than the next request needs) pauses the model until its reset.
    @Test func serverHeadersPauseUntilTheReset() {
        let l = RateLimiter(limits: RateLimits())
        #expect(l.reserve(tokens: 1, now: 10) == 0)
        l.heed(.init(remainingRequests: 5, resetRequests: 2), inFlight: 3, nextTokens: 10, now: 10)
        #expect(l.reserve(tokens: 1, now: 10) == 0)
        l.heed(.init(remainingRequests: 3, resetRequests: 2), inFlight: 3, nextTokens: 10, now: 10)
        #expect(abs(l.reserve(tokens: 1, now: 10) - 2) < 1e-9)
        let t = RateLimiter(limits: RateLimits())
        t.heed(.init(remainingTokens: 9, resetTokens: 0.5), inFlight: 0, nextTokens: 10, now: 0)
        #expect(abs(t.reserve(tokens: 1, now: 0) - 0.5) < 1e-9)
    }

    @Test(arguments: [
        ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), (" 7.66s", 7.66)
    ])
    func resetDurations(_ text: String, _ seconds: Double) {
        #expect(abs((RateLimiter.seconds(Substring(text)) ?? -1) - seconds) < 1e-9)
    }

    @Test(arguments: ["", "abc", "5x", "1s2", "-3"])
    func notDurations(_ text: String) {
        #expect(RateLimiter.seconds(Substring(text)) == nil)
    }

    /// A config entry's "rpm"/"tpm" wins over the flags, which fill in the others.
    @Test func configEntriesAndFlags() throws {
        var pool = ModelPool()
        try pool.load(
            configText:
                #"{"models":[{"name":"a","base_url":"http://h/v1","rpm":500},{"name":"b","base_url":"http://h/v1"}]}"#,
            source: "c.json")
        #expect(pool.models[0].rateLimits == RateLimits(requestsPerMinute: 500))
        #expect(throws: GRAError.self) {
            var p = ModelPool()
            try p.load(configText: #"{"models":[{"name":"a","base_url":"http://h/v1","tpm":0}]}"#, source: "c.json")
        }
    }
}
