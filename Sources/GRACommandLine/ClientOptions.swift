import ArgumentParser
import Foundation
import GRAKit

/// Flags every LLM stage shares: the model pool, concurrency, timeouts, retries and cache.
public struct ClientOptions: ParsableArguments {
    @Option(
        name: .customLong("model"), parsing: .singleValue,
        help: ArgumentHelp(
            """
            A model as NAME@BASE_URL (repeat for more models; the same NAME twice adds a replica). NAME alone \
            uses OPENAI_BASE_URL.
            """,
            valueName: "name@url"))
    public var models: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A JSON config file with the model pool: {\"models\": [{\"name\", \"base_urls\", \"api_key_env\"}]}.",
            valueName: "file"))
    public var config: String?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Requests in flight at most, in total.", valueName: "n"))
    public var maxInFlight: Int = 64

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Requests in flight at most per base URL (default: --max-in-flight).", valueName: "n"))
    public var maxPerEndpoint: Int?

    @Flag(
        name: .long,
        help: """
            Keep every base URL at --max-per-endpoint requests in flight. By default a server that answers 429 or \
            503, or times out, gets half as many, and one more per window's worth of answers after that.
            """)
    public var fixedConcurrency = false

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Requests per minute each model may be sent (a hosted API's published limit; a config entry's "rpm" \
            wins). Requests are spaced evenly at 99% of it.
            """,
            valueName: "n"))
    public var rpm: Double?

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Tokens per minute each model may be sent (a config entry's "tpm" wins): prompt bytes / 4 plus \
            max_tokens before sending, corrected with the reply's usage.
            """,
            valueName: "n"))
    public var tpm: Double?

    @Option(
        name: .long, parsing: .unconditional, help: ArgumentHelp("Seconds to wait for a connection.", valueName: "s"))
    public var connectTimeout: Double = 10

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds a whole request may take (local models are slow; no low-speed limit applies).", valueName: "s"))
    public var timeout: Double = 600

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Attempts per request for 429, 5xx, timeouts, resets and malformed replies (400/401/403/404 are never \
            retried).
            """,
            valueName: "n"))
    public var maxAttempts: Int = 5

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp(
            """
            Stop sending to a model once every endpoint of it has failed this many connection attempts in a row \
            over at least 10 s (its server went away): the records that need it go to the errors file and the \
            stage exits 69. 0: never.
            """,
            valueName: "n"))
    public var maxConnectFailures: Int = 16

    @Option(
        name: .long, parsing: .unconditional,
        help: ArgumentHelp("Largest response body accepted, in bytes.", valueName: "n"))
    public var maxResponseBytes: Int = 16 << 20

    @Option(
        name: .long,
        help: ArgumentHelp("Response cache directory (default: $XDG_CACHE_HOME/gra or ~/.cache/gra).", valueName: "dir")
    )
    public var cache: String?

    @Flag(
        inversion: .prefixedNo,
        help:
            """
            Draw a live status line on stderr (records done, requests, rates, ETA), refreshed twice a second. \
            Default: when stderr is a terminal.
            """
    )
    public var progress: Bool?

    @Flag(name: .long, help: "Neither read nor write the response cache.")
    public var noCache = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            """
            Keep this run's cached replies apart (for different weights served under the same model name); a \
            model's own cache_namespace in --config wins. Cached replies are keyed by model name and request, not \
            by server URL.
            """,
            valueName: "name"))
    public var cacheNamespace: String?

    public init() {}

    public func validate() throws {
        guard maxInFlight > 0 else { throw ValidationError("--max-in-flight must be positive") }
        if let m = maxPerEndpoint, m <= 0 { throw ValidationError("--max-per-endpoint must be positive") }
        guard maxAttempts > 0 else { throw ValidationError("--max-attempts must be positive") }
        guard maxConnectFailures >= 0 else { throw ValidationError("--max-connect-failures must be ≥ 0") }
        if noCache && cache != nil { throw ValidationError("--cache and --no-cache contradict each other: give one") }
        if noCache && cacheNamespace != nil { throw ValidationError("--cache-namespace has no effect with --no-cache") }
        guard timeout > 0, connectTimeout > 0 else { throw ValidationError("timeouts must be positive") }
        if let r = rpm, !(r > 0) { throw ValidationError("--rpm must be positive") }
        if let t = tpm, !(t > 0) { throw ValidationError("--tpm must be positive") }
    }

    /// The model pool from --config, --model and the environment.
    public func pool(environment: [String: String]) throws(GRAError) -> ModelPool {
        try ModelPool.resolve(
            modelSpecs: models, configPath: config, environment: environment, cacheNamespace: cacheNamespace,
            rateLimits: RateLimits(requestsPerMinute: rpm, tokensPerMinute: tpm))
    }

    /// A client with these settings (and the cache unless --no-cache), telling `diagnostics`
    /// of retries, blocked models and cache trouble.
    public func makeClient(environment: [String: String], diagnostics: Diagnostics) throws(GRAError) -> LLMClient {
        var cacheStore: ResponseCache?
        if !noCache {
            let dir = cache ?? ResponseCache.defaultDirectory(environment: environment)
            cacheStore = try ResponseCache(directory: dir) { diagnostics.warn($0) }
        }
        var retry = RetryPolicy()
        retry.maxAttempts = maxAttempts
        if let base = environment["GRA_RETRY_BASE_DELAY"], let d = Double(base) { retry.baseDelay = d }
        let http = HTTPClient(maxInFlight: maxInFlight, maxPerEndpoint: maxPerEndpoint, adaptive: !fixedConcurrency)
        var limits = RequestLimits()
        limits.connectTimeout = connectTimeout
        limits.totalTimeout = timeout
        limits.maxResponseBytes = maxResponseBytes
        var breakerSeconds = 10.0
        if let n = environment["GRA_BREAKER_SECONDS"], let seconds = Double(n) { breakerSeconds = seconds }
        let health = ModelHealth(
            maxConnectFailures: maxConnectFailures, minimumSeconds: breakerSeconds,
            onBlock: { _, block in diagnostics.error(block.message) })
        return LLMClient(
            http: http, cache: cacheStore, retry: retry, limits: limits, health: health, environment: environment,
            onRetry: { message, key in diagnostics.info(message, fold: key) },
            onWarning: { message in diagnostics.warn(message) })
    }
}
