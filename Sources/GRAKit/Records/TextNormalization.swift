import Foundation

/// Unifies the text of a sample so that equal texts look equal.
///
/// In order: CRLF and lone CR become LF; Unicode is put in NFC; outside Markdown code
/// fences (see `FenceTracker`), lines holding only
/// whitespace become empty and runs of blank lines collapse to one; finally leading and
/// trailing ASCII whitespace of the whole text is trimmed. Text inside code fences is untouched.
public enum TextNormalizer {
    /// The result of unifying one text.
    public struct Result: Equatable, Sendable {
        public var text: String
        /// True when a code fence is opened and never closed (a sign of a truncated reply).
        public var hasUnclosedFence: Bool
    }

    /// Unifies `text`; see the type's description for the rules.
    public static func unify(_ text: String) -> Result {
        var text = text
        var needsNFC = false
        var unclosed = false
        let unified: [UInt8]? = text.withUTF8 { src -> [UInt8]? in
            needsNFC = !isQuickNFC(src)
            return unifyBytes(src, unclosedFence: &unclosed)
        }
        if let unified { text = String(decoding: unified, as: UTF8.self) }
        if needsNFC { text = text.precomposedStringWithCanonicalMapping }
        return Result(text: text, hasUnclosedFence: unclosed)
    }

    /// True when every scalar is certainly in NFC already (NFC_Quick_Check = Yes for
    /// everything below U+0300, CJK ideographs and Hangul syllables). Anything else goes
    /// through Foundation's normalization, which is exact but slower.
    static func isQuickNFC(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = s.count
        while i < n {
            // Skip ASCII eight bytes at a time.
            while i + 8 <= n
                && UnsafeRawPointer(s.baseAddress! + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0
            {
                i += 8
            }
            guard i < n else { break }
            let c = s[i]
            if c < 0x80 {
                i += 1
                continue
            }
            // Decode the scalar (input is valid UTF-8: it came from a Swift String).
            var v: UInt32
            var len: Int
            if c < 0xE0 {
                v = UInt32(c & 0x1F)
                len = 2
            } else if c < 0xF0 {
                v = UInt32(c & 0x0F)
                len = 3
            } else {
                v = UInt32(c & 0x07)
                len = 4
            }
            var k = 1
            while k < len && i + k < n {
                v = v << 6 | UInt32(s[i + k] & 0x3F)
                k += 1
            }
            i += len
            if v < 0x300 || (0x3040...0x3098).contains(v) || (0x30A0...0x30FF).contains(v)
                || (0x4E00...0x9FFF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0x2000...0x206F).contains(v) || (0xFF01...0xFF5E).contains(v)
                || (0x1F300...0x1FAFF).contains(v)
            {
                continue
            }
            return false
        }
        return true
    }

    /// The byte-level rules (everything except NFC). Returns nil when nothing changes.
    static func unifyBytes(_ src: UnsafeBufferPointer<UInt8>, unclosedFence: inout Bool) -> [UInt8]? {
        let n = src.count
        if isSurelyUnchanged(src) { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var fences = FenceTracker()
        var pendingBlank = 0  // blank lines seen outside a fence, not yet written
        var wroteAnyLine = false
        var i = 0
        while i <= n {
            // Find the end of this line (LF, CRLF or lone CR).
            var j = i
            while j < n && src[j] != 0x0A && src[j] != 0x0D { j += 1 }
            let lineEnd = j
            var next = j + 1
            if j < n && src[j] == 0x0D && j + 1 < n && src[j + 1] == 0x0A { next = j + 2 }
            let line = UnsafeBufferPointer(rebasing: src[i..<lineEnd])

            let isBlank = !fences.inFence && line.allSatisfy { $0 == 0x20 || $0 == 0x09 }
            if isBlank {
                if wroteAnyLine { pendingBlank += 1 }
            } else {
                if wroteAnyLine {
                    out.append(0x0A)
                    if pendingBlank > 0 { out.append(0x0A) }
                }
                pendingBlank = 0
                out.append(contentsOf: line)
                wroteAnyLine = true
            }
            fences.see(line)
            if lineEnd >= n { break }
            i = next
        }
        unclosedFence = fences.inFence
        // Trim trailing whitespace of the whole text (leading blank lines were never written).
        while let last = out.last, last == 0x20 || last == 0x09 || last == 0x0A { out.removeLast() }
        // Trim leading spaces and tabs of the first line.
        var lead = 0
        while lead < out.count && (out[lead] == 0x20 || out[lead] == 0x09) { lead += 1 }
        if lead > 0 { out.removeFirst(lead) }
        if out.count == n && memcmp(out, src.baseAddress!, n) == 0 { return nil }
        return out
    }

    /// A fast conservative check: true only when `unifyBytes` would change nothing (no CR,
    /// no fence markers, no outer whitespace, no whitespace-only or repeated blank lines).
    static func isSurelyUnchanged(_ s: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = s.count
        guard n > 0, let p = s.baseAddress else { return true }
        @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A }
        if isSpace(p[0]) || isSpace(p[n - 1]) { return false }
        // memchr is vectorized; a few passes of it beat one byte-by-byte loop.
        if memchr(p, 0x0D, n) != nil { return false }
        for fence: UInt8 in [0x60, 0x7E] {
            var i = 0
            while i < n, let hit = memchr(p + i, Int32(fence), n - i) {
                let k = UnsafeRawPointer(hit) - UnsafeRawPointer(p)
                if k + 2 < n && p[k + 1] == fence && p[k + 2] == fence { return false }
                i = k + 1
            }
        }
        var i = 0
        while i < n, let hit = memchr(p + i, 0x0A, n - i) {
            let k = UnsafeRawPointer(hit) - UnsafeRawPointer(p)
            var j = k + 1
            while j < n && (p[j] == 0x20 || p[j] == 0x09) { j += 1 }
            if j < n && p[j] == 0x0A {
                // A blank line: fine only when empty and followed by a non-blank line.
                if j > k + 1 { return false }
                if j + 1 < n && isSpace(p[j + 1]) { return false }
            }
            i = k + 1
        }
        return true
    }

    /// True when `text` opens a code fence it never closes (a sign of a truncated reply):
    /// the check `unify` makes, without changing the text (`gra-format --no-normalize`).
    public static func hasUnclosedFence(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { src -> Bool in
            var fences = FenceTracker()
            var i = 0
            while i < src.count {
                var j = i
                while j < src.count && src[j] != 0x0A && src[j] != 0x0D { j += 1 }
                fences.see(UnsafeBufferPointer(rebasing: src[i..<j]))
                i = j + 1
            }
            return fences.inFence
        }
    }
}

/// Follows Markdown code fences line by line: a line of three or more ` or ~ (after any
/// indentation, so that fences inside list items count) opens a fence; inside one, a line
/// holding only the same character, at least as many times, closes it (again at any
/// indentation: a closing fence indented like its list item, or further, is not taken for
/// code and the reply for truncated).
struct FenceTracker {
    private(set) var inFence = false
    private var fenceChar: UInt8 = 0
    private var fenceLength = 0

    mutating func see(_ line: UnsafeBufferPointer<UInt8>) {
        var i = 0
        while i < line.count && (line[i] == 0x20 || line[i] == 0x09) { i += 1 }
        guard i < line.count else { return }
        let ch = line[i]
        guard ch == UInt8(ascii: "`") || ch == UInt8(ascii: "~") else { return }
        var len = 0
        while i + len < line.count && line[i + len] == ch { len += 1 }
        guard len >= 3 else { return }
        if !inFence {
            inFence = true
            fenceChar = ch
            fenceLength = len
            return
        }
        guard ch == fenceChar && len >= fenceLength else { return }
        var k = i + len
        while k < line.count && (line[k] == 0x20 || line[k] == 0x09) { k += 1 }
        if k == line.count { inFence = false }  // a closing fence carries nothing else
    }
}
