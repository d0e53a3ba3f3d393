/// A growable byte buffer that JSON and NDJSON lines are serialized into.
///
/// A class so that one buffer can be shared by a writer and its sink without copies.
public final class ByteBuffer {
    public private(set) var base: UnsafeMutablePointer<UInt8>
    public private(set) var count = 0
    public private(set) var capacity: Int

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    @inline(__always)
    public func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    private func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        p.update(from: base, count: count)
        base.deallocate()
        base = p
        capacity = newCapacity
    }

    @inline(__always)
    public func append(_ byte: UInt8) {
        if count == capacity { grow(count + 1) }
        base[count] = byte
        count += 1
    }

    @inline(__always)
    public func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).update(from: src, count: bytes.count)
        count += bytes.count
    }

    public func append(_ s: StaticString) {
        append(UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append($0) }
    }

    /// Drops the first `n` bytes, moving the rest to the front.
    public func removeFirst(_ n: Int) {
        precondition(n <= count)
        if n < count { base.update(from: base + n, count: count - n) }
        count -= n
    }

    public func removeAll() { count = 0 }

    /// Cuts the buffer back to `n` bytes (used to undo a partly written line).
    public func truncate(to n: Int) {
        precondition(n <= count)
        count = n
    }

    public var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// A copy of the contents as an array.
    public var array: [UInt8] { Array(bytes) }
}

/// Serializes `JSONValue`s compactly (no spaces), in field order, into a `ByteBuffer`.
///
/// Strings are written as UTF-8 with only `"`, `\` and control characters escaped,
/// numbers as their original text: parse → write reproduces the value exactly.
public enum JSONWriter {
    /// Appends the compact serialization of `value` to `out`.
    public static func write(_ value: JSONValue, to out: ByteBuffer) {
        switch value {
        case .null: out.append("null")
        case .bool(let b): b ? out.append("true") : out.append("false")
        case .number(let n): out.append(n)
        case .string(let s): writeString(s, to: out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            var first = true
            for item in items {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                write(item, to: out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o): write(o, to: out)
        }
    }

    /// Appends the compact serialization of `object` to `out`.
    public static func write(_ object: JSONObject, to out: ByteBuffer) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for f in object.fields {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            writeString(f.key, to: out)
            out.append(UInt8(ascii: ":"))
            write(f.value, to: out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// The compact serialization of `value` as a string.
    public static func string(_ value: JSONValue) -> String {
        let b = ByteBuffer(capacity: 256)
        write(value, to: b)
        return String(decoding: b.bytes, as: UTF8.self)
    }

    /// Appends `s` as a JSON string literal.
    public static func writeString(_ s: String, to out: ByteBuffer) {
        // Native strings lend their bytes without a copy of the string (and its retain).
        if s.utf8.withContiguousStorageIfAvailable({ writeStringBytes($0, to: out) }) != nil { return }
        var s = s
        s.withUTF8 { writeStringBytes($0, to: out) }
    }

    private static let hex: StaticString = "0123456789abcdef"

    static func writeStringBytes(_ src: UnsafeBufferPointer<UInt8>, to out: ByteBuffer) {
        // Worst case every byte becomes \u00XX (6 bytes), plus quotes.
        out.reserve(src.count + 2)
        out.append(UInt8(ascii: "\""))
        guard let p = src.baseAddress else {
            out.append(UInt8(ascii: "\""))
            return
        }
        let n = src.count
        var i = 0
        var runStart = 0
        while i < n {
            // Skip 8 bytes at a time that need no escaping (non-ASCII is written raw).
            while i + 8 <= n {
                let m = escapeMask(UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self))
                if m != 0 {
                    i += m.trailingZeroBitCount >> 3  // the first byte to escape (exact)
                    break
                }
                i += 8
            }
            guard i < n else { break }
            let c = p[i]
            if c >= 0x20 && c != 0x22 && c != 0x5C {
                i += 1
                continue
            }
            if i > runStart { out.append(UnsafeBufferPointer(start: p + runStart, count: i - runStart)) }
            out.reserve(6)
            switch c {
            case 0x22:
                out.append(UInt8(ascii: "\\"))
                out.append(0x22)
            case 0x5C:
                out.append(UInt8(ascii: "\\"))
                out.append(0x5C)
            case 0x0A:
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "n"))
            case 0x0D:
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "r"))
            case 0x09:
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "t"))
            case 0x08:
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "b"))
            case 0x0C:
                out.append(UInt8(ascii: "\\"))
                out.append(UInt8(ascii: "f"))
            default:
                out.append("\\u00")
                out.append(hex.utf8Start[Int(c >> 4)])
                out.append(hex.utf8Start[Int(c & 0xF)])
            }
            i += 1
            runStart = i
        }
        if n > runStart { out.append(UnsafeBufferPointer(start: p + runStart, count: n - runStart)) }
        out.append(UInt8(ascii: "\""))
    }

    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highs: UInt64 = 0x8080_8080_8080_8080

    /// The high bit of each of the 8 bytes (little-endian) that is a control character, '"' or
    /// '\\' (the parser's `attentionMask` adds non-ASCII bytes to it). Exact for the lowest
    /// flagged byte: the subtractions only borrow upward from a flagged byte, so a false flag can
    /// only sit above a true one.
    @inline(__always)
    static func escapeMask(_ w: UInt64) -> UInt64 {
        // Bytes >= 0x80 are excluded from the "< 0x20" test by `& ~w`.
        let lt20 = (w &- ones &* 0x20) & ~w
        let q = w ^ (ones &* 0x22)
        let hasQuote = (q &- ones) & ~q
        let b = w ^ (ones &* 0x5C)
        let hasBackslash = (b &- ones) & ~b
        return (lt20 | hasQuote | hasBackslash) & highs
    }
}
