import Foundation

/// The text gra-dedup compares: the chosen fields of a record, each normalized (NFKC,
/// case-folded, runs of whitespace collapsed to one space, trimmed), the non-empty ones
/// joined with one space.
///
/// Normalizing makes copies that differ only in case, width forms (ＡＢＣ), ligatures (ﬁ),
/// non-breaking spaces or line breaks compare equal, for the exact hash and for shingles.
public enum DedupText {
    /// Appends the normalized form of `text` to `out`.
    public static func appendNormalized(_ text: String, to out: inout [UInt8]) {
        var text = text
        let ascii = text.withUTF8 { src -> Bool in
            for c in src where c >= 0x80 { return false }
            appendCollapsed(src, to: &out)
            return true
        }
        if ascii { return }
        // Non-ASCII: NFKC, full case folding, NFKC again (folding can leave a sequence that
        // composes, e.g. 'İ' → 'i' + U+0307), then whitespace by the Unicode property.
        let folded = text.precomposedStringWithCompatibilityMapping
            .folding(options: [.caseInsensitive], locale: nil)
            .precomposedStringWithCompatibilityMapping
        var pendingSpace = false
        var scratch: [UInt8] = []
        for scalar in folded.unicodeScalars {
            if scalar.properties.isWhitespace {
                pendingSpace = !scratch.isEmpty
                continue
            }
            if pendingSpace {
                scratch.append(0x20)
                pendingSpace = false
            }
            UTF8.encode(scalar) { scratch.append($0) }
        }
        out.append(contentsOf: scratch)
    }

    /// The ASCII path: lower-cases A–Z and collapses runs of ASCII whitespace (space, tab,
    /// LF, VT, FF, CR) into one space, dropping leading and trailing whitespace.
    private static func appendCollapsed(_ src: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        let start = out.count
        var pendingSpace = false
        out.reserveCapacity(out.count + src.count)
        for c in src {
            if c == 0x20 || (c >= 0x09 && c <= 0x0D) {
                pendingSpace = out.count > start
                continue
            }
            if pendingSpace {
                out.append(0x20)
                pendingSpace = false
            }
            out.append(c >= 0x41 && c <= 0x5A ? c | 0x20 : c)
        }
    }

    /// Appends one more field: a separating space (when `out` is not empty) and the field's
    /// normalized text; nothing when that text is empty.
    /// The text the semantic method embeds: the compared fields as written, trimmed, the
    /// non-empty ones one per line. gra-report's map embeds the same (instruction and input), so
    /// with the same model and cache a run deduplicated semantically needs no new request.
    public static func semanticText(_ fields: [String]) -> String {
        fields.map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }.joined(separator: "\n")
    }

    public static func appendField(_ text: String, to out: inout [UInt8]) {
        let mark = out.count
        if mark > 0 { out.append(0x20) }
        let afterSeparator = out.count
        appendNormalized(text, to: &out)
        if out.count == afterSeparator { out.removeLast(out.count - mark) }
    }

    /// The normalized text of several fields: each normalized, empty ones skipped, joined by
    /// one space. Returns the UTF-8 bytes.
    public static func normalized(_ parts: [String]) -> [UInt8] {
        var out: [UInt8] = []
        for p in parts { appendField(p, to: &out) }
        return out
    }

    /// True for the scripts written without spaces between words (CJK ideographs, kana,
    /// CJK symbols and punctuation), whose every character is a word of its own for
    /// `word:K` shingles.
    @inline(__always)
    public static func isWordPerCharacter(_ v: UInt32) -> Bool {
        (v >= 0x2E80 && v <= 0x9FFF) || (v >= 0xF900 && v <= 0xFAFF) || (v >= 0x20000 && v <= 0x3FFFF)
    }
}

/// How a record is cut into shingles for MinHash: runs of `size` consecutive words
/// (`word:K`) or characters (`char:K`) of its normalized text.
///
/// Words are the space-separated tokens of the normalized text, except that each CJK
/// ideograph, kana or CJK punctuation mark is a word of its own (those scripts put no
/// spaces between words). Characters are Unicode scalars, spaces included. A text shorter
/// than `size` words (characters) is one shingle; an empty text has none.
public struct ShingleSpec: Sendable, Equatable, CustomStringConvertible {
    public enum Unit: String, Sendable { case word, char }
    public var unit: Unit
    public var size: Int

    public init(unit: Unit, size: Int) {
        self.unit = unit
        self.size = size
    }

    /// The default: 5-word shingles (fast, and what near-duplicate detection of English
    /// prose usually uses; CJK text is cut per character, so it gets 5-character shingles).
    public static let `default` = ShingleSpec(unit: .word, size: 5)

    /// Parses "word:K" or "char:K" (1 ≤ K ≤ 64).
    public init(_ text: String) throws(GRAError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let unit = Unit(rawValue: String(parts[0])), let k = Int(parts[1]), (1...64).contains(k)
        else {
            throw GRAError.usage("--shingle '\(text)': expected word:K or char:K with 1 <= K <= 64, e.g. word:5")
        }
        self.unit = unit
        self.size = k
    }

    public var description: String { "\(unit.rawValue):\(size)" }

    /// Seeds of the token and shingle hashes (fixed: part of the documented hash family).
    public static let tokenSeed: UInt64 = 0x9E37_79B9_7F4A_7C15
    public static let shingleSeed: UInt64 = 0xC2B2_AE3D_27D4_EB4F

    /// Appends the 64-bit hash of every shingle of `text` (a normalized text) to `out`.
    ///
    /// A token's hash is `StableHash.bytes(utf8, tokenSeed)` for words and the scalar value
    /// for characters; a shingle's hash folds its tokens' hashes in order:
    /// `s = shingleSeed; s = mix(s ^ t)` for each token `t`.
    public func appendShingleHashes(of text: UnsafeBufferPointer<UInt8>, tokens: inout [UInt64], to out: inout [UInt64])
    {
        tokens.removeAll(keepingCapacity: true)
        switch unit {
        case .word: Self.wordTokens(text, into: &tokens)
        case .char: Self.charTokens(text, into: &tokens)
        }
        let n = tokens.count
        guard n > 0 else { return }
        let k = min(size, n)
        tokens.withUnsafeBufferPointer { t in
            for start in 0...(n - k) {
                var s = ShingleSpec.shingleSeed
                for j in start..<(start + k) { s = StableHash.mix(s ^ t[j]) }
                out.append(s)
            }
        }
    }

    static func wordTokens(_ text: UnsafeBufferPointer<UInt8>, into tokens: inout [UInt64]) {
        guard let p = text.baseAddress else { return }
        let n = text.count
        var i = 0
        var start = 0
        @inline(__always) func flush(_ end: Int) {
            if end > start { tokens.append(StableHash.bytes(p + start, count: end - start, seed: tokenSeed)) }
        }
        while i < n {
            let c = p[i]
            if c == 0x20 {
                flush(i)
                i += 1
                start = i
                continue
            }
            if c >= 0xE2 {
                // A 3- or 4-byte sequence: maybe a character that is a word by itself.
                let len = c >= 0xF0 ? 4 : 3
                var v = UInt32(c & (len == 4 ? 0x07 : 0x0F))
                var k = 1
                while k < len && i + k < n {
                    v = v << 6 | UInt32(p[i + k] & 0x3F)
                    k += 1
                }
                if DedupText.isWordPerCharacter(v) {
                    flush(i)
                    start = i
                    flush(min(i + len, n))
                    i = min(i + len, n)
                    start = i
                    continue
                }
                i += len
                continue
            }
            i += 1
        }
        flush(n)
    }

    static func charTokens(_ text: UnsafeBufferPointer<UInt8>, into tokens: inout [UInt64]) {
        for scalar in String(decoding: text, as: UTF8.self).unicodeScalars {
            tokens.append(UInt64(scalar.value))
        }
    }
}
