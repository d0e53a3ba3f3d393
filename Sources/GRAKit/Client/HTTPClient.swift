import CCurl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP exchange for `HTTPClient`.
public struct HTTPRequest: Sendable {
    public var url: String
    /// "GET" or "POST" (a POST sends `body`).
    public var method: String
    /// Extra header lines, "Name: value".
    public var headers: [String]
    /// The bytes to POST, in a buffer nobody writes to once the request has it: the HTTP loop
    /// sends them from there, without copying them, however often the request is retried.
    nonisolated(unsafe) private(set) var bodyBuffer: ByteBuffer?
    /// Requests with the same endpoint share that endpoint's in-flight cap.
    public var endpoint: String
    public var connectTimeout: Double = 10
    /// Whole-exchange limit. No low-speed limit: a non-streamed completion sends nothing
    /// until the model is done.
    public var totalTimeout: Double = 600
    public var maxResponseBytes: Int = 16 << 20
    /// Asked once, when the request is about to start (its window slot is free): seconds to
    /// wait first (0: go). A rate limit reserves the request's place here, at the moment it
    /// would go out, so requests queued behind a full window are spaced when they leave it.
    public var gate: (@Sendable () -> Double)?
    /// Told of the response on the loop thread as soon as it is complete, before the next
    /// request takes its slot (the completion may run later, elsewhere): for what must act
    /// before then, such as a server's word that its rate limit is spent.
    public var observe: (@Sendable (HTTPResponse) -> Void)?

    public init(url: String, method: String = "GET", headers: [String] = [], body: [UInt8] = [], endpoint: String) {
        self.url = url
        self.method = method
        self.headers = headers
        self.endpoint = endpoint
        self.body = body
    }

    /// A request whose body is what `buffer` holds. The request takes the buffer: nothing may
    /// write to it afterwards.
    public init(
        url: String, method: String = "POST", headers: [String] = [], taking buffer: ByteBuffer, endpoint: String
    ) {
        self.url = url
        self.method = method
        self.headers = headers
        self.endpoint = endpoint
        bodyBuffer = buffer
    }

    /// The bytes to POST (a copy; setting it copies the bytes given into a buffer of their own).
    public var body: [UInt8] {
        get { bodyBuffer?.array ?? [] }
        set {
            if newValue.isEmpty {
                bodyBuffer = nil
            } else {
                let b = ByteBuffer(capacity: newValue.count)
                newValue.withUnsafeBufferPointer { b.append($0) }
                bodyBuffer = b
            }
        }
    }
}

/// What came back: a status and body, or a transport failure.
public struct HTTPResponse: Sendable {
    /// The HTTP status; 0 when no complete response arrived.
    public var status: Int = 0
    public var body: [UInt8] = []
    /// Seconds the server asked us to wait (`Retry-After`, `retry-after-ms`), if it said.
    public var retryAfter: Double?
    /// What `x-ratelimit-remaining-*` and `x-ratelimit-reset-*` said, when the server sent them.
    var rateLimit = RateLimiter.ServerHeaders()
    /// libcurl's result code; 0 for a complete exchange.
    public var curlCode: Int = 0
    /// libcurl's words for a transport failure.
    public var transportError: String?
    public var bodyTooLarge = false
    /// True when the transfer failed before a connection was made (host not found, connection
    /// refused, connect timeout): the server is not there, as opposed to a reply gone wrong.
    public var connectFailed = false
    public var seconds: Double = 0

    public var isTransportFailure: Bool { curlCode != 0 }
}

/// How many requests an endpoint may have in flight: now, the smallest it came to, the cap
/// (`--max-per-endpoint`, or `--max-in-flight`), and how often an overloaded reply (429, 503, a
/// timeout) halved it. See `HTTPEventLoop.Endpoint` for the rule.
public struct ConcurrencyWindow: Sendable, Equatable {
    public var current: Int
    public var smallest: Int
    public var largest: Int
    public var cuts: Int
}

/// An HTTP client over libcurl's multi interface: a sliding window of requests in flight (a
/// finished request immediately admits the next), caps per endpoint and in total, keep-alive
/// connection reuse, and delayed submission for retries.
///
/// Requests run on one event-loop thread, or on several when the window is large (each loop
/// owns its own libcurl multi handle, connections and an even share of the caps), so the
/// client is not held to one core. Completions run on a loop thread and must return quickly.
public final class HTTPClient: @unchecked Sendable {
    public typealias Completion = @Sendable (HTTPResponse) -> Void
    /// Runs a completion with its response somewhere else (e.g. hands both to another thread).
    public typealias Executor = @Sendable (_ completion: @escaping Completion, _ response: HTTPResponse) -> Void

    public let maxInFlight: Int
    public let maxPerEndpoint: Int
    private let loops: [HTTPEventLoop]
    /// Called on a loop thread after each round in which completions ran, so that a consumer
    /// they hand work to can be woken once per round instead of once per reply. Set it before
    /// the first request.
    public var afterCompletions: (@Sendable () -> Void)? {
        didSet { for loop in loops { loop.afterCompletions = afterCompletions } }
    }
    private let pickLock = Mutex()
    private var nextLoop = 0

    /// Windows of at least this many requests get a second loop thread (on a machine with
    /// more than one core).
    static let requestsPerLoop = 128

    /// `adaptive`: each endpoint's window follows what it can take (see `ConcurrencyWindow`);
    /// false keeps every endpoint at `maxPerEndpoint`.
    public init(maxInFlight: Int = 64, maxPerEndpoint: Int? = nil, loops: Int? = nil, adaptive: Bool = true) {
        let total = max(1, maxInFlight)
        let perEndpoint = max(1, maxPerEndpoint ?? maxInFlight)
        self.maxInFlight = total
        self.maxPerEndpoint = perEndpoint
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        // Never more loops than the smaller cap, so that every share is at least one request.
        let count = max(1, min(loops ?? min(cores, total / HTTPClient.requestsPerLoop, 4), total, perEndpoint))
        // Split both caps exactly, so the totals never exceed what was asked.
        func share(_ cap: Int, _ i: Int) -> Int { max(1, cap / count + (i < cap % count ? 1 : 0)) }
        self.loops = (0..<count).map { i in
            HTTPEventLoop(maxInFlight: share(total, i), maxPerEndpoint: share(perEndpoint, i), adaptive: adaptive)
        }
    }

    /// Queues a request; when it ends, `completion` runs on a loop thread, or is given with the
    /// response to `executor` when there is one (no wrapping closure is made per request). With
    /// `delay`, the request starts no earlier than that many seconds from now.
    public func send(
        _ request: HTTPRequest, delay: Double = 0, via executor: Executor? = nil, completion: @escaping Completion
    ) {
        let loop: HTTPEventLoop
        if loops.count == 1 {
            loop = loops[0]
        } else {
            loop = pickLock.locked { () -> HTTPEventLoop in
                nextLoop = (nextLoop + 1) % loops.count
                return loops[nextLoop]
            }
        }
        loop.send(request, delay: delay, via: executor, completion: completion)
    }

    /// Requests started and not yet finished for `endpoint` (for least-loaded choice).
    public func inFlight(endpoint: String) -> Int {
        loops.reduce(0) { $0 + $1.inFlight(endpoint: endpoint) }
    }

    /// Each endpoint's concurrency window, summed over the loops, in order of first use.
    public func windows() -> [(endpoint: String, window: ConcurrencyWindow)] {
        var order: [String] = []
        var sums: [String: ConcurrencyWindow] = [:]
        for loop in loops {
            for (name, w) in loop.windows() {
                if let s = sums[name] {
                    sums[name] = ConcurrencyWindow(
                        current: s.current + w.current, smallest: s.smallest + w.smallest,
                        largest: s.largest + w.largest, cuts: s.cuts + w.cuts)
                } else {
                    order.append(name)
                    sums[name] = w
                }
            }
        }
        return order.map { ($0, sums[$0]!) }
    }

    /// Stops the event loops now and waits for their threads to end: requests still queued or
    /// in flight are abandoned (their completions never run), and no callback runs after it
    /// returns. Call it once the caller needs no more answers; calling it again is harmless.
    public func shutdown() {
        for loop in loops { loop.shutdown() }
    }

    /// Monotonic seconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
