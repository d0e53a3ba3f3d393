import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loopback address to listen on: 127.0.0.0/8 or ::1 ("localhost" means 127.0.0.1).
struct LoopbackAddress {
    let isIPv6: Bool
    /// The numeric address, as inet_pton reads it.
    let numeric: String
    /// The host part of a URL: "127.0.0.1" or "[::1]".
    var urlHost: String { isIPv6 ? "[\(numeric)]" : numeric }

    /// Nil for anything that is not a loopback address.
    init?(_ host: String) {
        var h = host
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h.lowercased() == "localhost" { h = "127.0.0.1" }
        var a4 = in_addr()
        if inet_pton(AF_INET, h, &a4) == 1 {
            guard UInt32(bigEndian: a4.s_addr) >> 24 == 127 else { return nil }
            isIPv6 = false
            numeric = h
            return
        }
        var a6 = in6_addr()
        guard inet_pton(AF_INET6, h, &a6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: a6) { Array($0) }
        guard bytes.count == 16, bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 else { return nil }
        isIPv6 = true
        numeric = "::1"
    }
}

/// A startup failure, with the exit status it deserves.
struct ServerFailure: Error, CustomStringConvertible {
    var description: String
    var status: Int32
}

/// One client connection and where it is in its exchange.
final class Connection {
    /// What the connection is doing; requests are parsed only while `.idle`.
    enum State {
        case idle
        /// A delayed response is pending on a timer.
        case delayed
        /// Never answering (fault "hang", or waiting for the RST of "reset_mid_body").
        case hanging
        /// Our side is shut down; reading and discarding until the client closes.
        case draining
    }

    let fd: Int32
    /// 1 for the first connection the server accepted, and so on (in the request log).
    let serial: Int
    /// What the poller watches for now.
    var wantsRead = true
    var wantsWrite = false
    let input = ByteBuffer(capacity: 4096)
    /// Bytes of `input` already consumed.
    var inputStart = 0
    let output = ByteBuffer(capacity: 4096)
    /// Bytes of `output` already sent.
    var outputSent = 0
    /// The head of the request whose body is still arriving.
    var head: RequestHead?
    var state = State.idle
    /// The client will send nothing more (EOF on read).
    var readClosed = false
    /// No more requests are taken: close once the output is sent.
    var closing = false
    var closed = false
    /// Counts reads that brought bytes: an idle timer set before a later read is stale.
    var activity = 0

    init(fd: Int32, serial: Int) {
        self.fd = fd
        self.serial = serial
    }

    var pendingOutput: Int { output.count - outputSent }
}

/// The single-threaded HTTP/1.1 server: one event loop (epoll) over non-blocking sockets
/// with keep-alive, pipelining, timers for delays, and the faults the script asks for.
final class HTTPServer {
    /// One thing to do later on the loop.
    private struct Timer {
        enum Action {
            case deliver(Plan)
            case reset
            case forceClose
            case resumeAccepting
            /// Close a keep-alive connection that has stayed idle since `activity`.
            case closeIfIdle(activity: Int)
        }
        var deadline: UInt64
        var connection: Connection?
        var action: Action
    }

    /// Input buffered beyond this while a connection is not taking requests stops reading it.
    static let maxBufferedWhileBusy = 1 << 20
    static let drainTimeoutMs = 2000
    static let resetDelayMs = 20

    private let listener: Int32
    private let signalFD: Int32
    private let responder: Responder
    private let diagnostics: Diagnostics
    private let poller = Poller()
    /// Open connections, indexed by descriptor.
    private var connections: [Connection?] = []
    private var accepting = true
    /// Connections accepted so far.
    private var accepted = 0
    private var timers: [Timer] = []
    private var due: [Timer] = []
    private var events: [Poller.Event] = []
    private let readBuffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
    private let readBufferSize = 1 << 16
    private var stopping = false
    private var warnedFDs = false
    /// Close keep-alive connections idle this long (milliseconds), as servers do; 0: never.
    private let idleTimeoutMs: Int
    /// Requests being answered at once (those waiting out their delay_ms) above which a new
    /// POST gets 503 at once, as an overloaded server does; 0: no limit.
    private let maxConcurrent: Int
    /// Requests waiting out their delay_ms now.
    private var busy = 0
    /// POSTs refused with 503 for --max-concurrent, and the most requests ever busy at once.
    private(set) var refusedBusy = 0
    private(set) var peakBusy = 0
    /// At most `count` POSTs in any `seconds` (a rolling window), as a hosted API's rate limit:
    /// more get 429. With `headers`, every POST's answer says what is left, as OpenAI's do
    /// (x-ratelimit-limit/remaining/reset-requests).
    private let rateLimit: (count: Int, seconds: Double, headers: Bool)?
    /// When the POSTs of the current window arrived (monotonic ns), oldest first from `recentHead`.
    private var recent: [UInt64] = []
    private var recentHead = 0
    private(set) var refusedRate = 0

    /// Takes over a listening socket; `signalFD` becoming readable stops the loop. Keep-alive
    /// connections idle for `idleTimeoutMs` are closed (0: kept until the client closes them).
    init(
        listener: Int32, signalFD: Int32, responder: Responder, diagnostics: Diagnostics, idleTimeoutMs: Int = 0,
        maxConcurrent: Int = 0, rateLimit: (count: Int, seconds: Double, headers: Bool)? = nil
    ) {
        self.idleTimeoutMs = idleTimeoutMs
        self.maxConcurrent = maxConcurrent
        self.rateLimit = rateLimit
        self.listener = listener
        self.signalFD = signalFD
        self.responder = responder
        self.diagnostics = diagnostics
        poller.add(listener, read: true, write: false)
        poller.add(signalFD, read: true, write: false)
    }

    deinit { readBuffer.deallocate() }

    // MARK: - Listening

    /// Opens a non-blocking listening socket; returns it and the port it got.
    static func openListener(on address: LoopbackAddress, port: Int) throws(ServerFailure) -> (fd: Int32, port: Int) {
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, socketStream, 0)
        guard fd >= 0 else { throw ServerFailure(description: "socket: \(errnoText())", status: 71) }
        setNonBlocking(fd)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var rc: Int32
        if address.isIPv6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port)).bigEndian
            inet_pton(AF_INET6, address.numeric, &sa.sin6_addr)
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port)).bigEndian
            inet_pton(AF_INET, address.numeric, &sa.sin_addr)
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard rc == 0 else {
            let text = errnoText()
            close(fd)
            throw ServerFailure(description: "cannot listen on \(address.urlHost):\(port): \(text)", status: 69)
        }
        guard listen(fd, 4096) == 0 else {
            let text = errnoText()
            close(fd)
            throw ServerFailure(description: "listen: \(text)", status: 71)
        }
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let bound: UInt16 = withUnsafePointer(to: &ss) { p in
            address.isIPv6
                ? p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                : p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        return (fd, Int(bound))
    }

    // MARK: - The loop

    /// Serves until the signal pipe becomes readable, then closes every connection.
    func run() {
        while !stopping {
            guard poller.wait(timeoutMs: pollTimeout(), into: &events) else {
                diagnostics.error("waiting for events: \(errnoText())")
                break
            }
            var acceptReady = false
            for e in events {
                if e.fd == signalFD {
                    stopping = true
                } else if e.fd == listener {
                    acceptReady = true
                } else if Int(e.fd) < connections.count, let c = connections[Int(e.fd)] {
                    handle(c, e)
                }
            }
            if stopping { break }
            if acceptReady { acceptConnections() }
            fireTimers()
        }
        for case let c? in connections { closeConnection(c) }
        close(listener)
    }

    private func handle(_ c: Connection, _ e: Poller.Event) {
        if e.failed {
            closeConnection(c)
            return
        }
        if e.readable {
            readable(c)
            if c.closed { return }
        }
        if e.writable { flush(c) }
    }

    private func acceptConnections() {
        while accepting {
            let fd = accept(listener, nil, nil)
            if fd < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: stop accepting for a moment instead of spinning.
                    if !warnedFDs {
                        warnedFDs = true
                        diagnostics.warn("accept: \(errnoText()); pausing new connections")
                    }
                    accepting = false
                    poller.modify(listener, read: false, write: false)
                    addTimer(after: 100, nil, .resumeAccepting)
                    return
                default:
                    return
                }
            }
            setNonBlocking(fd)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            accepted += 1
            let c = Connection(fd: fd, serial: accepted)
            let i = Int(fd)
            if i >= connections.count {
                connections.append(
                    contentsOf: repeatElement(nil, count: max(i + 1 - connections.count, connections.count)))
            }
            connections[i] = c
            poller.add(fd, read: true, write: false)
        }
    }

    // MARK: - Reading and requests

    private func readable(_ c: Connection) {
        var n: Int
        repeat { n = read(c.fd, readBuffer, readBufferSize) } while n < 0 && errno == EINTR
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return }
            closeConnection(c)
            return
        }
        if n == 0 {
            c.readClosed = true
            if c.state == .draining || c.state == .hanging || c.closing && c.pendingOutput == 0 {
                closeConnection(c)
                return
            }
        } else if c.state == .draining || c.closing {
            return  // no more requests are taken; discard
        } else {
            c.activity += 1
            c.input.append(UnsafeBufferPointer(start: readBuffer, count: n))
        }
        process(c)
    }

    /// Parses and answers the complete requests buffered on `c`, in order, then sends.
    private func process(_ c: Connection) {
        requests: while c.state == .idle && !c.closing {
            if c.head == nil {
                let available = c.input.count - c.inputStart
                if available == 0 { break }
                switch HTTPParser.parseHead(c.input.base + c.inputStart, count: available) {
                case .incomplete:
                    break requests
                case .invalid(let status, let message):
                    var r = Responder.error(
                        status, message: "gra-testserver: \(message)", type: "invalid_request_error", code: .null)
                    r.close = true
                    r.write(to: c.output)
                    c.closing = true
                    break requests
                case .head(let h):
                    c.inputStart += h.length
                    if h.hasTransferEncoding {
                        responder.refuse(
                            h, connection: c.serial, status: 411,
                            message: "gra-testserver: chunked uploads are not supported; send Content-Length"
                        ).write(to: c.output)
                        c.closing = true
                        break requests
                    }
                    if h.contentLength > HTTPParser.maxBodyBytes {
                        responder.refuse(
                            h, connection: c.serial, status: 413,
                            message: "gra-testserver: request body over \(HTTPParser.maxBodyBytes) bytes"
                        ).write(to: c.output)
                        c.closing = true
                        break requests
                    }
                    c.head = h
                    if h.expectContinue && c.input.count - c.inputStart < h.contentLength {
                        c.output.append("HTTP/1.1 100 Continue\r\n\r\n")
                    }
                }
            }
            guard let h = c.head, c.input.count - c.inputStart >= h.contentLength else { break }
            let body = Array(UnsafeBufferPointer(start: c.input.base + c.inputStart, count: h.contentLength))
            c.inputStart += h.contentLength
            c.head = nil
            if maxConcurrent > 0 && busy >= maxConcurrent && h.method == "POST" {
                refusedBusy += 1
                var r = responder.refuse(
                    h, connection: c.serial, status: 503,
                    message:
                        "gra-testserver: overloaded: \(maxConcurrent) requests (--max-concurrent) are being answered")
                r.close = !h.keepAlive
                r.write(to: c.output)
                if r.close { c.closing = true }
                continue
            }
            var rateHeaders: [(name: String, value: String)] = []
            if let limit = rateLimit, h.method == "POST" {
                let now = monotonicNanos()
                let window = UInt64(limit.seconds * 1e9)
                while recentHead < recent.count && now - recent[recentHead] >= window { recentHead += 1 }
                if recentHead > 4096 {
                    recent.removeFirst(recentHead)
                    recentHead = 0
                }
                let used = recent.count - recentHead
                if used < limit.count { recent.append(now) }
                if limit.headers {
                    let oldest = recentHead < recent.count ? recent[recentHead] : now
                    let reset = Double(oldest + window - min(now, oldest + window)) / 1e9
                    rateHeaders = [
                        ("x-ratelimit-limit-requests", String(limit.count)),
                        ("x-ratelimit-remaining-requests", String(max(0, limit.count - used - 1))),
                        ("x-ratelimit-reset-requests", String(format: "%.3fs", reset))
                    ]
                }
                if used >= limit.count {
                    refusedRate += 1
                    var r = responder.refuse(
                        h, connection: c.serial, status: 429,
                        message:
                            "gra-testserver: rate limit: \(limit.count) requests per \(limit.seconds) s (--rate-limit)")
                    r.headers = rateHeaders
                    r.close = !h.keepAlive
                    r.write(to: c.output)
                    if r.close { c.closing = true }
                    continue
                }
            }
            var plan = responder.plan(
                for: HTTPRequest(
                    method: h.method, path: h.path, authorization: h.authorization, body: body, connection: c.serial))
            plan.response.headers += rateHeaders
            if !h.keepAlive { plan.response.close = true }
            if plan.delayMs > 0 {
                c.state = .delayed
                busy += 1
                peakBusy = max(peakBusy, busy)
                addTimer(after: plan.delayMs, c, .deliver(plan))
            } else {
                deliver(plan, to: c)
                if c.closed { return }
            }
        }
        if c.inputStart > 0 {
            if c.inputStart == c.input.count { c.input.removeAll() } else { c.input.removeFirst(c.inputStart) }
            c.inputStart = 0
        }
        if c.readClosed && c.state == .idle { c.closing = true }
        flush(c)
    }

    /// Queues a plan's response on `c`, or breaks the exchange as its fault says.
    private func deliver(_ plan: Plan, to c: Connection) {
        if c.state == .delayed { busy -= 1 }
        c.state = .idle
        switch plan.fault {
        case .reset?:
            abortConnection(c)
        case .hang?:
            c.state = .hanging
        case .resetMidBody?:
            plan.response.writeHalf(to: c.output)
            c.state = .hanging
            // Let the half body reach the client before the RST cuts it off.
            addTimer(after: HTTPServer.resetDelayMs, c, .reset)
        case .truncate?:
            plan.response.writeHalf(to: c.output)
            c.closing = true
        case .malformed?, nil:
            plan.response.write(to: c.output)
            if plan.response.close { c.closing = true }
        }
    }

    // MARK: - Writing and closing

    /// Sends what is queued; closes the connection when it is done with.
    private func flush(_ c: Connection) {
        while c.pendingOutput > 0 {
            let n = send(c.fd, c.output.base + c.outputSent, c.pendingOutput, sendFlags)
            if n > 0 {
                c.outputSent += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                break
            } else {
                closeConnection(c)
                return
            }
        }
        if c.pendingOutput == 0 {
            c.output.removeAll()
            c.outputSent = 0
            if c.closing && c.state == .idle {
                if c.readClosed {
                    closeConnection(c)
                    return
                }
                // Shut our side and read until the client closes, so unread input cannot
                // turn the close into an RST that destroys the response in flight.
                shutdown(c.fd, Int32(SHUT_WR))
                c.state = .draining
                addTimer(after: HTTPServer.drainTimeoutMs, c, .forceClose)
            } else if idleTimeoutMs > 0 && c.state == .idle && c.head == nil && c.input.count == c.inputStart {
                addTimer(after: idleTimeoutMs, c, .closeIfIdle(activity: c.activity))
            }
        }
        updateInterest(c)
    }

    private func updateInterest(_ c: Connection) {
        let busy = c.state == .delayed || c.state == .hanging
        let read = !c.readClosed && !(busy && c.input.count > HTTPServer.maxBufferedWhileBusy)
        let write = c.pendingOutput > 0
        if read != c.wantsRead || write != c.wantsWrite {
            c.wantsRead = read
            c.wantsWrite = write
            poller.modify(c.fd, read: read, write: write)
        }
    }

    /// Closes with an RST (SO_LINGER 0) instead of a FIN.
    private func abortConnection(_ c: Connection) {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        closeConnection(c)
    }

    private func closeConnection(_ c: Connection) {
        guard !c.closed else { return }
        c.closed = true
        if c.state == .delayed { busy -= 1 }
        poller.remove(c.fd)
        systemClose(c.fd)
        connections[Int(c.fd)] = nil
    }

    // MARK: - Timers

    private func addTimer(after ms: Int, _ c: Connection?, _ action: Timer.Action) {
        timers.append(Timer(deadline: monotonicNanos() + UInt64(ms) * 1_000_000, connection: c, action: action))
    }

    /// Milliseconds until the next timer (rounded up), or -1 to wait for I/O only.
    private func pollTimeout() -> Int32 {
        guard let next = timers.lazy.map(\.deadline).min() else { return -1 }
        let now = monotonicNanos()
        if next <= now { return 0 }
        return Int32(min((next - now + 999_999) / 1_000_000, 60_000))
    }

    private func fireTimers() {
        guard !timers.isEmpty else { return }
        let now = monotonicNanos()
        var i = 0
        while i < timers.count {
            if timers[i].deadline <= now {
                due.append(timers[i])
                timers.swapAt(i, timers.count - 1)
                timers.removeLast()
            } else {
                i += 1
            }
        }
        guard !due.isEmpty else { return }
        due.sort { $0.deadline < $1.deadline }
        for t in due {
            if case .resumeAccepting = t.action {
                accepting = true
                poller.modify(listener, read: true, write: false)
                continue
            }
            guard let c = t.connection, !c.closed else { continue }
            switch t.action {
            case .deliver(let plan):
                guard c.state == .delayed else { continue }
                deliver(plan, to: c)
                if !c.closed { process(c) }
            case .reset:
                abortConnection(c)
            case .forceClose:
                closeConnection(c)
            case .closeIfIdle(let activity):
                if c.activity == activity && c.state == .idle && c.pendingOutput == 0 && c.head == nil {
                    closeConnection(c)
                }
            case .resumeAccepting:
                break
            }
        }
        due.removeAll(keepingCapacity: true)
    }
}

#if os(Linux)
private let socketStream = Int32(SOCK_STREAM.rawValue)
private let sendFlags = Int32(MSG_NOSIGNAL)
#else
private let socketStream = SOCK_STREAM
private let sendFlags: Int32 = 0  // SIGPIPE is ignored process-wide
#endif

/// Makes a descriptor non-blocking and close-on-exec.
private func setNonBlocking(_ fd: Int32) {
    _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
}

private func systemClose(_ fd: Int32) { _ = close(fd) }

/// Nanoseconds on the monotonic clock.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// The text of the current errno.
func errnoText() -> String { String(cString: strerror(errno)) }
