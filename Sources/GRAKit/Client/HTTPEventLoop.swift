import CCurl
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One event-loop thread driving one libcurl multi handle through the socket interface.
final class HTTPEventLoop: @unchecked Sendable {
    typealias Completion = HTTPClient.Completion

    let maxInFlight: Int
    let maxPerEndpoint: Int
    /// Adapt each endpoint's window to what it can take (`Endpoint.window`); false: every
    /// endpoint gets `maxPerEndpoint` (`--fixed-concurrency`).
    let adaptive: Bool

    private let lock = Mutex()
    /// Transfers handed over by `send` (made on the sender's thread: only a reference changes hands).
    private var inbox: [Transfer] = []
    /// The other half of the inbox's double buffer (swapped, never copied: no allocation).
    private var incoming: [Transfer] = []
    private var stopping = false
    /// See `HTTPClient.afterCompletions`.
    var afterCompletions: (@Sendable () -> Void)?
    /// One per endpoint seen, in order of first use. The loop thread appends and counts under
    /// `lock`; `inFlight(endpoint:)` reads under it from other threads.
    private var endpoints: [Endpoint] = []

    // Event-loop state (loop thread only).
    private var multi: UnsafeMutableRawPointer?
    private var epollFD: Int32 = -1
    private var wakeFD: Int32 = -1
    /// When libcurl wants `socket_action(CURL_SOCKET_TIMEOUT)` (monotonic seconds).
    private var timerDue: Double?
    private var thread: Thread?
    /// Transfers queued in all endpoints, and where the round-robin over them goes next.
    private var waitingCount = 0
    private var nextEndpoint = 0
    private var delayed: [(due: Double, transfer: Transfer)] = []
    private var running = 0
    private var freeHandles: [Handle] = []
    /// Every easy handle made (at most the loop's cap); one is in flight while its
    /// CURLOPT_PRIVATE holds a transfer.
    private var allHandles: [Handle] = []
    private let done = DispatchSemaphore(value: 0)

    private static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    init(maxInFlight: Int, maxPerEndpoint: Int, adaptive: Bool = true) {
        _ = HTTPEventLoop.globalInit
        self.maxInFlight = maxInFlight
        self.maxPerEndpoint = maxPerEndpoint
        self.adaptive = adaptive
        multi = curl_multi_init()
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        _ = gra_epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, EPOLLIN.rawValue)
        // Our own caps decide concurrency; libcurl must add no hidden limit of its own.
        _ = gra_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0)
        _ = gra_multi_setopt_long(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0)
        _ = gra_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, Int(self.maxInFlight * 2 + 8))
        // The socket interface: libcurl tells us which sockets to watch (epoll) and when to
        // call it back; only ready connections are serviced, never all of them per wakeup.
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = gra_multi_setopt_ptr(multi, CURLMOPT_SOCKETDATA, me)
        _ = gra_multi_setopt_ptr(multi, CURLMOPT_TIMERDATA, me)
        _ = gra_multi_setopt_socketfunction(multi) { _, socket, what, client, socketp in
            Unmanaged<HTTPEventLoop>.fromOpaque(client!).takeUnretainedValue().watch(
                socket, what, known: socketp != nil)
            return 0
        }
        _ = gra_multi_setopt_timerfunction(multi) { _, milliseconds, client in
            let c = Unmanaged<HTTPEventLoop>.fromOpaque(client!).takeUnretainedValue()
            c.timerDue = milliseconds < 0 ? nil : HTTPClient.now() + Double(milliseconds) / 1000
            return 0
        }
        // The loop holds the client until `shutdown()` ends it (a client that is never shut
        // down lives as long as the process, as its thread does).
        let t = Thread { self.loop() }
        t.name = "gra-http"
        thread = t
        t.start()
    }

    deinit {
        for h in freeHandles { curl_easy_cleanup(h.easy) }
        curl_multi_cleanup(multi)
        for (_, l) in headerLists { curl_slist_free_all(l) }
        for (_, u) in parsedURLs { curl_url_cleanup(u) }
        close(epollFD)
        close(wakeFD)
    }

    /// Wakes the event loop from another thread.
    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Sockets libcurl stopped watching that are still in the epoll set, by descriptor.
    ///
    /// libcurl forgets a connection's socket when its transfer ends and asks for it again when
    /// the next transfer reuses the connection, often a moment later: removing and re-adding it
    /// cost two epoll_ctl calls on about one request in five. A forgotten socket is left in
    /// the set instead ("parked") and changed back with one call. Should it become readable
    /// while parked (the server closed an idle connection), it is removed then. A parked
    /// socket that libcurl closed has left the set by itself (the kernel drops a closed file),
    /// so re-registering tries MOD first and falls back to ADD.
    private var parked: [Bool] = []

    /// libcurl's socket callback: (re)registers or forgets a socket in the epoll set.
    private func watch(_ socket: curl_socket_t, _ what: Int32, known: Bool) {
        if what == CURL_POLL_REMOVE {
            if socket >= 0 {
                if Int(socket) >= parked.count {
                    parked += [Bool](repeating: false, count: Int(socket) + 64 - parked.count)
                }
                parked[Int(socket)] = true
            }
            return
        }
        var events: UInt32 = 0
        if what & CURL_POLL_IN != 0 { events |= EPOLLIN.rawValue }
        if what & CURL_POLL_OUT != 0 { events |= EPOLLOUT.rawValue }
        if known {
            _ = gra_epoll_ctl(epollFD, EPOLL_CTL_MOD, socket, events)
            return
        }
        curl_multi_assign(multi, socket, UnsafeMutableRawPointer(bitPattern: 1))
        if isParked(socket) {
            parked[Int(socket)] = false
            if gra_epoll_ctl(epollFD, EPOLL_CTL_MOD, socket, events) == 0 { return }
        }
        if gra_epoll_ctl(epollFD, EPOLL_CTL_ADD, socket, events) != 0 && errno == EEXIST {
            _ = gra_epoll_ctl(epollFD, EPOLL_CTL_MOD, socket, events)
        }
    }

    private func isParked(_ socket: curl_socket_t) -> Bool {
        socket >= 0 && Int(socket) < parked.count && parked[Int(socket)]
    }

    func send(
        _ request: HTTPRequest, delay: Double, via executor: HTTPClient.Executor?, completion: @escaping Completion
    ) {
        let t = Transfer(request: request, executor: executor, completion: completion)
        t.due = delay > 0 ? HTTPClient.now() + delay : 0
        // Wake the loop only for the first request of a burst: it drains the whole inbox.
        let wasEmpty = lock.locked { () -> Bool in
            let e = inbox.isEmpty
            inbox.append(t)
            return e
        }
        if wasEmpty { wake() }
    }

    func inFlight(endpoint: String) -> Int {
        lock.locked { endpoints.first { $0.name == endpoint }?.inFlight ?? 0 }
    }

    /// Each endpoint's window as this loop keeps it.
    func windows() -> [(endpoint: String, window: ConcurrencyWindow)] {
        lock.locked {
            endpoints.map {
                (
                    $0.name,
                    ConcurrencyWindow(current: $0.limit, smallest: $0.smallest, largest: maxPerEndpoint, cuts: $0.cuts)
                )
            }
        }
    }

    /// Stops the loop and waits for its thread to end; safe to call again (each caller
    /// passes the signal on to the next).
    func shutdown() {
        lock.locked { stopping = true }
        wake()
        done.wait()
        done.signal()
    }

    // MARK: - Event loop

    /// One request in flight, reachable from libcurl callbacks through CURLOPT_PRIVATE.
    final class Transfer {
        let request: HTTPRequest
        let completion: Completion
        /// Where `completion` runs, if not on the loop thread.
        let executor: HTTPClient.Executor?
        /// The easy handle running it, while it runs.
        var handle: Handle?
        var response = HTTPResponse()
        var started = 0.0
        /// Not to start before this (monotonic seconds; 0: at once).
        var due = 0.0
        /// Set when the transfer is queued.
        var endpoint: Endpoint?
        /// The request's gate has been asked (and its wait, if any, served).
        var gated = false

        init(request: HTTPRequest, executor: HTTPClient.Executor?, completion: @escaping Completion) {
            self.request = request
            self.executor = executor
            self.completion = completion
        }
    }

    /// A libcurl easy handle kept for the next request (without curl_easy_reset: its options
    /// stay set), with the options that vary by request as last set, so that unchanged ones are
    /// not set again (libcurl copies the URL string and re-reads every option it is given).
    final class Handle {
        let easy: UnsafeMutableRawPointer
        var url = ""
        var method = ""
        var connectTimeoutMS = -1
        var totalTimeoutMS = -1
        var maxResponseBytes = -1
        var headerList: UnsafeMutablePointer<curl_slist>?

        init(_ easy: UnsafeMutableRawPointer) { self.easy = easy }
    }

    /// Header lists are the same for every request to an endpoint: build each once and keep
    /// it for the client's life (a run has a handful: one per endpoint and key).
    private var headerLists: [[String]: UnsafeMutablePointer<curl_slist>] = [:]

    private var lastHeaders: [String] = []
    private var lastHeaderList: UnsafeMutablePointer<curl_slist>?

    private func headerList(for headers: [String]) -> UnsafeMutablePointer<curl_slist>? {
        // Callers pass the same array for every request to an endpoint: comparing it with the
        // last one is a pointer check, cheaper than hashing it.
        if let l = lastHeaderList, headers == lastHeaders { return l }
        let list = makeHeaderList(for: headers)
        lastHeaders = headers
        lastHeaderList = list
        return list
    }

    /// URLs parsed once by libcurl's URL API and kept for the client's life (a run has one per
    /// endpoint and path). A handle given a parsed URL (CURLOPT_CURLU) copies it per transfer
    /// instead of parsing the text and printing it back: ~13k fewer instructions per request,
    /// a tenth of gra-map's total.
    private var parsedURLs: [String: OpaquePointer] = [:]
    private var lastURL = ""
    private var lastParsedURL: OpaquePointer?

    /// The parsed form of `url`, or nil when libcurl's URL API refuses it (the text is then
    /// set as CURLOPT_URL, so the transfer fails with libcurl's own message, or libcurl
    /// guesses the scheme as it does for a URL without one).
    private func parsedURL(_ url: String) -> OpaquePointer? {
        if let u = lastParsedURL, url == lastURL { return u }
        let parsed: OpaquePointer?
        if let known = parsedURLs[url] {
            parsed = known
        } else if let u = curl_url() {
            if curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK {
                parsedURLs[url] = u
                parsed = u
            } else {
                curl_url_cleanup(u)
                parsed = nil
            }
        } else {
            parsed = nil
        }
        if let parsed {
            lastURL = url
            lastParsedURL = parsed
        }
        return parsed
    }

    private func makeHeaderList(for headers: [String]) -> UnsafeMutablePointer<curl_slist>? {
        if let l = headerLists[headers] { return l }
        var list: UnsafeMutablePointer<curl_slist>?
        for h in headers { list = curl_slist_append(list, h) }
        // No "Expect: 100-continue" round trip for large bodies.
        list = curl_slist_append(list, "Expect:")
        headerLists[headers] = list
        return list
    }

    private var ended: [(UnsafeMutableRawPointer, CURLcode)] = []
    private var readyFDs = [Int32](repeating: 0, count: 256)
    private var readyEvents = [UInt32](repeating: 0, count: 256)

    private func loop() {
        while true {
            let stop = lock.locked { () -> Bool in
                swap(&inbox, &incoming)
                return stopping
            }
            let now = HTTPClient.now()
            for t in incoming {
                if t.due > now { delayed.append((t.due, t)) } else { enqueue(t) }
            }
            incoming.removeAll(keepingCapacity: true)
            if !delayed.isEmpty {
                var keep: [(due: Double, transfer: Transfer)] = []
                for d in delayed { if d.due <= now { enqueue(d.transfer) } else { keep.append(d) } }
                delayed = keep
            }
            startWaiting()
            if stop {
                abandonAll()
                break
            }
            var timeout = 1.0
            if let due = timerDue { timeout = min(timeout, due - HTTPClient.now()) }
            if let next = delayed.map(\.due).min() { timeout = min(timeout, next - HTTPClient.now()) }
            let n = gra_epoll_wait(
                epollFD, &readyFDs, &readyEvents, Int32(readyFDs.count), Int32(max(0, timeout * 1000).rounded(.up)))
            var stillRunning: Int32 = 0
            if n > 0 {
                for i in 0..<Int(n) {
                    let fd = readyFDs[i]
                    if fd == wakeFD {
                        var count: UInt64 = 0
                        _ = read(wakeFD, &count, 8)
                        continue
                    }
                    if isParked(fd) {
                        // libcurl is not watching it: an idle connection the server closed.
                        parked[Int(fd)] = false
                        _ = gra_epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, 0)
                        continue
                    }
                    let e = readyEvents[i]
                    var flags: Int32 = 0
                    if e & (EPOLLIN.rawValue | EPOLLHUP.rawValue) != 0 { flags |= CURL_CSELECT_IN }
                    if e & EPOLLOUT.rawValue != 0 { flags |= CURL_CSELECT_OUT }
                    if e & EPOLLERR.rawValue != 0 { flags |= CURL_CSELECT_ERR }
                    curl_multi_socket_action(multi, fd, flags, &stillRunning)
                }
            }
            if let due = timerDue, due <= HTTPClient.now() {
                timerDue = nil
                // -1 is CURL_SOCKET_TIMEOUT: the timer went off.
                curl_multi_socket_action(multi, -1, 0, &stillRunning)
            }
            // Read every message before removing any handle: libcurl's remove_handle scans the
            // messages still queued, so removing while many are queued costs quadratic time.
            var remaining: Int32 = 0
            while let msg = curl_multi_info_read(multi, &remaining) {
                if msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle {
                    ended.append((easy, gra_msg_result(msg)))
                }
            }
            if !ended.isEmpty {
                for (easy, code) in ended { finish(easy: easy, code: code) }
                ended.removeAll(keepingCapacity: true)
                afterCompletions?()
            }
        }
        done.signal()
    }

    /// An endpoint's share of the loop: requests in flight, those waiting for a slot, and how
    /// many may be in flight at once.
    ///
    /// The window adapts by additive increase, multiplicative decrease: a reply that says the
    /// server is overloaded (429, 503, or a timeout after the connection was made) halves it,
    /// down to 1, once per round trip (a request sent before the last cut does not cut again);
    /// every other answer widens it by 1/window, so by about one per window's worth of replies,
    /// up to the cap. It starts at the cap.
    final class Endpoint {
        let name: String
        var inFlight = 0
        var queue = TransferQueue()
        var window: Double
        /// `window` as a whole number of requests, at least 1 (what `startWaiting` compares).
        var limit: Int
        var smallest: Int
        var cuts = 0
        var lastCut = 0.0
        init(name: String, cap: Int) {
            self.name = name
            window = Double(cap)
            limit = cap
            smallest = cap
        }
    }

    private func enqueue(_ t: Transfer) {
        let name = t.request.endpoint
        // A handful of endpoints at most, and the same string each time: a scan beats hashing.
        let endpoint: Endpoint
        if let known = endpoints.first(where: { $0.name == name }) {
            endpoint = known
        } else {
            endpoint = Endpoint(name: name, cap: maxPerEndpoint)
            lock.locked { endpoints.append(endpoint) }
        }
        t.endpoint = endpoint
        endpoint.queue.push(t)
        waitingCount += 1
    }

    /// Starts waiting transfers, one endpoint after the other, within the caps.
    private func startWaiting() {
        var idle = 0  // endpoints in a row with nothing to start
        while waitingCount > 0 && running < maxInFlight && idle < endpoints.count {
            let endpoint = endpoints[nextEndpoint]
            nextEndpoint = nextEndpoint + 1 == endpoints.count ? 0 : nextEndpoint + 1
            if endpoint.inFlight < endpoint.limit, let t = endpoint.queue.pop() {
                waitingCount -= 1
                if !t.gated, let gate = t.request.gate {
                    t.gated = true
                    let wait = gate()
                    if wait > 0 {
                        t.due = HTTPClient.now() + wait
                        delayed.append((t.due, t))
                        idle = 0
                        continue
                    }
                }
                start(t)
                idle = 0
            } else {
                idle += 1
            }
        }
    }

    /// A FIFO of transfers waiting for a slot (O(1) at both ends).
    struct TransferQueue {
        private var items: [Transfer?] = []
        private var head = 0
        var isEmpty: Bool { head == items.count }
        mutating func push(_ t: Transfer) { items.append(t) }
        mutating func removeAll() {
            items.removeAll()
            head = 0
        }
        mutating func pop() -> Transfer? {
            guard head < items.count else { return nil }
            let t = items[head]
            items[head] = nil  // the queue holds no transfer that has left it
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 1024 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            return t
        }
    }

    private func start(_ t: Transfer) {
        let handle: Handle
        if let reused = freeHandles.popLast() {
            handle = reused
        } else {
            handle = Handle(curl_easy_init()!)
            HTTPEventLoop.configureNewHandle(handle.easy)
            allHandles.append(handle)
        }
        let easy = handle.easy
        t.handle = handle
        t.started = HTTPClient.now()
        let r = t.request
        if handle.url != r.url {
            if let parsed = parsedURL(r.url) {
                _ = gra_easy_setopt_ptr(easy, CURLOPT_CURLU, UnsafeMutableRawPointer(parsed))
            } else {
                _ = gra_easy_setopt_ptr(easy, CURLOPT_CURLU, nil)
                _ = gra_easy_setopt_str(easy, CURLOPT_URL, r.url)
            }
            handle.url = r.url
        }
        let connectMS = Int(r.connectTimeout * 1000), totalMS = Int(r.totalTimeout * 1000)
        if handle.connectTimeoutMS != connectMS {
            _ = gra_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, connectMS)
            handle.connectTimeoutMS = connectMS
        }
        if handle.totalTimeoutMS != totalMS {
            _ = gra_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, totalMS)
            handle.totalTimeoutMS = totalMS
        }
        if handle.maxResponseBytes != r.maxResponseBytes {
            _ = gra_easy_setopt_off(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(r.maxResponseBytes))
            handle.maxResponseBytes = r.maxResponseBytes
        }
        let post = r.method == "POST"
        if handle.method != r.method {
            _ = gra_easy_setopt_long(easy, post ? CURLOPT_POST : CURLOPT_HTTPGET, 1)
            handle.method = r.method
        }
        if post {
            // Not copied: the transfer holds the request, and so its body, until libcurl is done.
            let body = r.bodyBuffer
            _ = gra_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body?.count ?? 0))
            _ = gra_easy_setopt_ptr(
                easy, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(body?.base ?? UnsafeMutablePointer(bitPattern: 1)!))
        }
        let headers = headerList(for: r.headers)
        if handle.headerList != headers {
            _ = gra_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headers)
            handle.headerList = headers
        }
        let context = Unmanaged.passRetained(t).toOpaque()
        _ = gra_easy_setopt_ptr(easy, CURLOPT_PRIVATE, context)
        _ = gra_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, context)
        _ = gra_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, context)
        lock.locked { t.endpoint!.inFlight += 1 }
        running += 1
        curl_multi_add_handle(multi, easy)
    }

    /// Removes every transfer from libcurl and drops what is waiting (at shutdown).
    private func abandonAll() {
        var remaining: Int32 = 0
        while curl_multi_info_read(multi, &remaining) != nil {}
        for h in allHandles {
            let e = h.easy
            var context: UnsafeMutableRawPointer?
            _ = gra_easy_getinfo_ptr(e, CURLINFO_PRIVATE, &context)
            guard let context else { continue }
            curl_multi_remove_handle(multi, e)
            Unmanaged<Transfer>.fromOpaque(context).release()
            _ = gra_easy_setopt_ptr(e, CURLOPT_PRIVATE, nil)
            freeHandles.append(h)
        }
        for e in endpoints { e.queue.removeAll() }
        waitingCount = 0
        delayed.removeAll()
        running = 0
    }

    /// With no proxy variable in the environment, libcurl is told so once per handle; otherwise
    /// it searches the environment for them on every request.
    private static let noProxyVariables: (proxy: Bool, noProxy: Bool) = {
        func unset(_ names: [String]) -> Bool { names.allSatisfy { (getenv($0).map { $0.pointee == 0 }) ?? true } }
        return (
            unset(["http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]),
            unset(["no_proxy", "NO_PROXY"])
        )
    }()

    /// Options that never change between requests, set once per handle.
    private static func configureNewHandle(_ easy: UnsafeMutableRawPointer) {
        // "" means no proxy at all, and no exceptions: what an environment without them says.
        if noProxyVariables.proxy { _ = gra_easy_setopt_str(easy, CURLOPT_PROXY, "") }
        if noProxyVariables.noProxy { _ = gra_easy_setopt_str(easy, CURLOPT_NOPROXY, "") }
        _ = gra_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = gra_easy_setopt_long(easy, CURLOPT_TCP_NODELAY, 1)
        _ = gra_easy_setopt_write(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let n = size * count
            if t.response.body.count + n > t.request.maxResponseBytes {
                t.response.bodyTooLarge = true
                return 0  // aborts the transfer with CURLE_WRITE_ERROR
            }
            if t.response.body.isEmpty {
                // One allocation of the announced size rather than a series of doublings.
                var length: curl_off_t = -1
                _ = gra_easy_getinfo_off(t.handle?.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length)
                if length > n && length <= t.request.maxResponseBytes { t.response.body.reserveCapacity(Int(length)) }
            }
            data!.withMemoryRebound(to: UInt8.self, capacity: n) {
                t.response.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: n))
            }
            return n
        }
        _ = gra_easy_setopt_write(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            let n = size * count
            // Only status lines, retry hints and rate-limit headers matter; skip every other
            // header cheaply.
            let first = UInt8(bitPattern: data![0]) | 0x20
            if n > 5 && first == UInt8(ascii: "h") && memcmp(data!, "HTTP/", 5) == 0 {
                // A new status line (after a 100 or a redirect) starts afresh.
                let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                t.response.retryAfter = nil
                t.response.rateLimit = RateLimiter.ServerHeaders()
            } else if n > 12 && (first == UInt8(ascii: "r") || first == UInt8(ascii: "x")) {
                let t = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
                let line = data!.withMemoryRebound(to: UInt8.self, capacity: n) {
                    String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self)
                }
                HTTPEventLoop.noteHeader(line, into: &t.response)
            }
            return n
        }
    }

    /// Reads the retry hints and rate-limit headers out of a header line (status lines are
    /// handled by the caller).
    static func noteHeader(_ line: String, into response: inout HTTPResponse) {
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].lowercased()
        if name.hasPrefix("x-ratelimit-") {
            let value = line[line.index(after: colon)...]
            switch name {
            case "x-ratelimit-remaining-requests":
                response.rateLimit.remainingRequests = Int(value.trimmingWhitespace())
            case "x-ratelimit-remaining-tokens": response.rateLimit.remainingTokens = Int(value.trimmingWhitespace())
            case "x-ratelimit-reset-requests": response.rateLimit.resetRequests = RateLimiter.seconds(value)
            case "x-ratelimit-reset-tokens": response.rateLimit.resetTokens = RateLimiter.seconds(value)
            default: break
            }
            return
        }
        guard name.hasPrefix("retry-after") else { return }
        let value = line[line.index(after: colon)...].trimmingWhitespace()
        if name == "retry-after-ms", let ms = Double(value) {
            response.retryAfter = ms / 1000
        } else if name == "retry-after", response.retryAfter == nil {
            if let seconds = Double(value) {
                response.retryAfter = seconds
            } else if let date = HTTPEventLoop.httpDate(value) {
                response.retryAfter = max(0, date.timeIntervalSinceNow)
            }
        }
    }

    private static func httpDate(_ s: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: s)
    }

    private func finish(easy: UnsafeMutableRawPointer, code: CURLcode) {
        var context: UnsafeMutableRawPointer?
        _ = gra_easy_getinfo_ptr(easy, CURLINFO_PRIVATE, &context)
        curl_multi_remove_handle(multi, easy)
        _ = gra_easy_setopt_ptr(easy, CURLOPT_PRIVATE, nil)
        let t = Unmanaged<Transfer>.fromOpaque(context!).takeRetainedValue()
        var status = 0
        _ = gra_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        t.response.curlCode = Int(code.rawValue)
        if code != CURLE_OK {
            t.response.transportError =
                t.response.bodyTooLarge
                ? "response body over \(t.request.maxResponseBytes) bytes"
                : String(cString: curl_easy_strerror(code))
            t.response.status = 0
            var connectMicros: curl_off_t = 0
            _ = gra_easy_getinfo_off(easy, CURLINFO_CONNECT_TIME_T, &connectMicros)
            let notThere =
                code == CURLE_COULDNT_RESOLVE_HOST || code == CURLE_COULDNT_RESOLVE_PROXY
                || code == CURLE_COULDNT_CONNECT
            t.response.connectFailed = notThere || (code == CURLE_OPERATION_TIMEDOUT && connectMicros == 0)
        } else {
            t.response.status = status
        }
        t.response.seconds = HTTPClient.now() - t.started
        // Kept for the next request without curl_easy_reset (see `Handle`); it keeps its
        // buffers too.
        freeHandles.append(t.handle!)
        t.handle = nil
        running -= 1
        let endpoint = t.endpoint!
        if adaptive {
            let r = t.response
            let overloaded =
                r.status == 429 || r.status == 503 || (code == CURLE_OPERATION_TIMEDOUT && !r.connectFailed)
            let answered = code == CURLE_OK && !overloaded
            lock.locked {
                endpoint.inFlight -= 1
                if overloaded && t.started >= endpoint.lastCut {
                    endpoint.window = max(1, endpoint.window / 2)
                    endpoint.lastCut = HTTPClient.now()
                    endpoint.cuts += 1
                } else if answered && endpoint.window < Double(maxPerEndpoint) {
                    endpoint.window = min(Double(maxPerEndpoint), endpoint.window + 1 / endpoint.window)
                }
                endpoint.limit = max(1, Int(endpoint.window))
                endpoint.smallest = min(endpoint.smallest, endpoint.limit)
            }
        } else {
            lock.locked { endpoint.inFlight -= 1 }
        }
        // Moved out rather than copied: the transfer is done with it.
        var response = HTTPResponse()
        swap(&response, &t.response)
        t.request.observe?(response)
        if let executor = t.executor { executor(t.completion, response) } else { t.completion(response) }
    }
}
