import GRAKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The head (request line and headers) of one HTTP/1.x request, reduced to what the server uses.
struct RequestHead {
    var method = ""
    /// The path of the request target, without query or fragment.
    var path = ""
    var contentLength = 0
    /// A Transfer-Encoding header was present (chunked upload): answered with 411.
    var hasTransferEncoding = false
    var keepAlive = true
    var expectContinue = false
    /// The raw Authorization header. Never logged or echoed.
    var authorization: String?
    /// Bytes the head took in the input, final blank line included.
    var length = 0
}

/// A complete request: what the responder sees.
struct HTTPRequest {
    var method: String
    var path: String
    var authorization: String?
    var body: [UInt8]
    /// Which connection it came on: 1 for the first the server accepted, and so on.
    var connection = 0
}

/// A response to serialize. It always goes out with a Content-Length.
struct HTTPResponse {
    var status: Int
    var contentType = "application/json"
    /// Extra headers, in order (from a rule's "headers").
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// Close the connection once this response is sent.
    var close = false

    init(status: Int, contentType: String = "application/json", body: [UInt8], close: Bool = false) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.close = close
    }

    /// Appends the status line and headers (with `Content-Length` of the whole body) to `out`.
    func writeHead(to out: ByteBuffer) {
        out.append("HTTP/1.1 ")
        out.appendInt(status)
        out.append(UInt8(ascii: " "))
        out.append(HTTPResponse.reason(status))
        out.append("\r\nServer: gra-testserver\r\nContent-Type: ")
        out.append(contentType)
        out.append("\r\nContent-Length: ")
        out.appendInt(body.count)
        out.append("\r\n")
        for h in headers {
            out.append(h.name)
            out.append(": ")
            out.append(h.value)
            out.append("\r\n")
        }
        if close { out.append("Connection: close\r\n") }
        out.append("\r\n")
    }

    /// Appends the whole response to `out`.
    func write(to out: ByteBuffer) {
        writeHead(to: out)
        body.withUnsafeBufferPointer { out.append($0) }
    }

    /// Appends the head and the first half of the body (a response cut short).
    func writeHalf(to out: ByteBuffer) {
        writeHead(to: out)
        body.withUnsafeBufferPointer { out.append(UnsafeBufferPointer(rebasing: $0[0..<($0.count / 2)])) }
    }

    static func reason(_ status: Int) -> StaticString {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 415: return "Unsupported Media Type"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        default: return "Status"
        }
    }
}

/// What parsing the buffered bytes of a connection gave.
enum HeadParseResult {
    /// The blank line ending the head has not arrived yet.
    case incomplete
    case head(RequestHead)
    /// Not HTTP/1.x we accept: answer `status` and close.
    case invalid(status: Int, message: String)
}

/// An HTTP/1.x request-head parser over raw bytes: strict about structure, lenient about
/// bare LF line ends, allocation-free except for the strings it returns.
enum HTTPParser {
    /// A head longer than this is refused with 431.
    static let maxHeadBytes = 64 << 10
    /// A body longer than this is refused with 413.
    static let maxBodyBytes = 64 << 20

    static func parseHead(_ base: UnsafePointer<UInt8>, count: Int) -> HeadParseResult {
        // Empty lines before the request line are tolerated (RFC 9112 §2.2).
        var pos = 0
        while pos < count && (base[pos] == 0x0D || base[pos] == 0x0A) { pos += 1 }
        guard let headEnd = findHeadEnd(base, from: pos, count: count) else {
            if count > maxHeadBytes { return .invalid(status: 431, message: "request head over \(maxHeadBytes) bytes") }
            return .incomplete
        }
        if headEnd > maxHeadBytes { return .invalid(status: 431, message: "request head over \(maxHeadBytes) bytes") }

        var head = RequestHead()
        head.length = headEnd
        var first = true
        var http10 = false
        var keepAliveToken = false
        var closeToken = false
        var sawLength = false
        while pos < headEnd {
            var nl = pos
            while base[nl] != 0x0A { nl += 1 }
            var end = nl
            if end > pos && base[end - 1] == 0x0D { end -= 1 }
            let line = UnsafeBufferPointer(start: base + pos, count: end - pos)
            pos = nl + 1
            if line.isEmpty { break }
            if first {
                first = false
                guard let rl = parseRequestLine(line) else {
                    return .invalid(status: 400, message: "malformed request line")
                }
                head.method = rl.method
                head.path = rl.path
                http10 = rl.http10
                continue
            }
            // Obsolete line folding and whitespace before the colon are refused (RFC 9112 §5).
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                line[0..<colon].allSatisfy(isTokenChar)
            else {
                return .invalid(status: 400, message: "malformed header line")
            }
            var vs = colon + 1
            var ve = line.count
            while vs < ve && (line[vs] == 0x20 || line[vs] == 0x09) { vs += 1 }
            while ve > vs && (line[ve - 1] == 0x20 || line[ve - 1] == 0x09) { ve -= 1 }
            let name = UnsafeBufferPointer(rebasing: line[0..<colon])
            let value = UnsafeBufferPointer(rebasing: line[vs..<ve])
            if value.contains(where: { $0 == 0x0D || $0 == 0 }) {
                return .invalid(status: 400, message: "bad character in header value")
            }
            if equalsLowercase(name, "content-length") {
                guard let n = parseDecimal(value) else {
                    return .invalid(status: 400, message: "bad Content-Length")
                }
                if sawLength && n != head.contentLength {
                    return .invalid(status: 400, message: "conflicting Content-Length headers")
                }
                sawLength = true
                head.contentLength = n
            } else if equalsLowercase(name, "transfer-encoding") {
                head.hasTransferEncoding = true
            } else if equalsLowercase(name, "connection") {
                for token in value.split(separator: UInt8(ascii: ",")) {
                    let t = trimmed(UnsafeBufferPointer(rebasing: token))
                    if equalsLowercase(t, "close") { closeToken = true }
                    if equalsLowercase(t, "keep-alive") { keepAliveToken = true }
                }
            } else if equalsLowercase(name, "expect") {
                if equalsLowercase(value, "100-continue") { head.expectContinue = true }
            } else if equalsLowercase(name, "authorization") {
                head.authorization = String(decoding: value, as: UTF8.self)
            }
        }
        head.keepAlive = http10 ? (keepAliveToken && !closeToken) : !closeToken
        return .head(head)
    }

    /// The offset just past the blank line that ends the head, or nil if it has not arrived.
    private static func findHeadEnd(_ base: UnsafePointer<UInt8>, from start: Int, count: Int) -> Int? {
        var i = start
        let limit = min(count, maxHeadBytes + 4)
        while i < limit {
            guard let p = memchr(base + i, 0x0A, limit - i) else { return nil }
            let nl = UnsafePointer<UInt8>(p.assumingMemoryBound(to: UInt8.self)) - base
            // "\n\n" or "\n\r\n" ends the head.
            if nl + 1 < count && base[nl + 1] == 0x0A { return nl + 2 }
            if nl + 2 < count && base[nl + 1] == 0x0D && base[nl + 2] == 0x0A { return nl + 3 }
            i = nl + 1
        }
        return nil
    }

    private static func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>) -> (
        method: String, path: String, http10: Bool
    )? {
        guard let sp1 = line.firstIndex(of: 0x20), sp1 > 0,
            let sp2 = line[(sp1 + 1)...].firstIndex(of: 0x20), sp2 > sp1 + 1
        else { return nil }
        let method = line[0..<sp1]
        let version = UnsafeBufferPointer(rebasing: line[(sp2 + 1)...])
        guard method.allSatisfy(isTokenChar) else { return nil }
        let http10: Bool
        if equalsExactly(version, "HTTP/1.1") {
            http10 = false
        } else if equalsExactly(version, "HTTP/1.0") {
            http10 = true
        } else {
            return nil
        }
        var target = line[(sp1 + 1)..<sp2]
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        // Absolute form (as sent to proxies): keep the path only.
        if target.first != UInt8(ascii: "/") {
            let t = UnsafeBufferPointer(rebasing: target)
            guard let schemeEnd = findSubsequence(t, "://") else {
                guard t.count == 1 && t[0] == UInt8(ascii: "*") else { return nil }
                return (String(decoding: method, as: UTF8.self), "*", http10)
            }
            let afterAuthority = target[(target.startIndex + schemeEnd + 3)...]
            if let slash = afterAuthority.firstIndex(of: UInt8(ascii: "/")) {
                target = target[slash...]
            } else {
                return (String(decoding: method, as: UTF8.self), "/", http10)
            }
        }
        if let q = target.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) {
            target = target[..<q]
        }
        return (String(decoding: method, as: UTF8.self), String(decoding: target, as: UTF8.self), http10)
    }

    private static func findSubsequence(_ b: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Int? {
        let n = s.utf8CodeUnitCount
        guard b.count >= n else { return nil }
        for i in 0...(b.count - n) where memcmp(b.baseAddress! + i, s.utf8Start, n) == 0 { return i }
        return nil
    }

    /// RFC 9110 token characters.
    @inline(__always)
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// Case-insensitive comparison with a lowercase ASCII literal.
    static func equalsLowercase(_ b: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard b.count == n else { return false }
        let p = s.utf8Start
        for i in 0..<n {
            var c = b[i]
            if c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z") { c |= 0x20 }
            if c != p[i] { return false }
        }
        return true
    }

    private static func equalsExactly(_ b: UnsafeBufferPointer<UInt8>, _ s: StaticString) -> Bool {
        b.count == s.utf8CodeUnitCount && memcmp(b.baseAddress!, s.utf8Start, b.count) == 0
    }

    private static func trimmed(_ b: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        var s = 0
        var e = b.count
        while s < e && (b[s] == 0x20 || b[s] == 0x09) { s += 1 }
        while e > s && (b[e - 1] == 0x20 || b[e - 1] == 0x09) { e -= 1 }
        return UnsafeBufferPointer(rebasing: b[s..<e])
    }

    /// A non-negative decimal of at most 18 digits, or nil.
    private static func parseDecimal(_ b: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !b.isEmpty && b.count <= 18 else { return nil }
        var n = 0
        for c in b {
            guard c >= 0x30 && c <= 0x39 else { return nil }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }
}

extension ByteBuffer {
    /// Appends the decimal digits of `n`.
    func appendInt(_ n: Int) {
        if n >= 0 && n < 10 {
            append(UInt8(0x30 + n))
            return
        }
        append(String(n))
    }
}
