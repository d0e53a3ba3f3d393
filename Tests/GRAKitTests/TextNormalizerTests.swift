import Testing
@testable import GRAKit

@Suite("Text unification")
struct TextNormalizerTests {
    @Test(arguments: [
        ("  hello  ", "hello"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("a\n\n\n\nb", "a\n\nb"),
        ("a\n  \n\t\nb", "a\n\nb"),
        ("a\n\nb", "a\n\nb"),
        ("\n\nfirst\nsecond\n\n", "first\nsecond"),
        ("e\u{301}", "\u{E9}"),                 // NFC composes
        ("\u{212B}", "\u{C5}"),                 // Angstrom sign → Å
        ("中文\n\n\n日本語", "中文\n\n日本語"),
        ("x\n```\ncode\n\n\n\n  indented\n```\n\n\ny", "x\n```\ncode\n\n\n\n  indented\n```\n\ny"),
        ("~~~py\na\n\n\nb\n~~~", "~~~py\na\n\n\nb\n~~~"),
        ("plain", "plain"),
        ("", ""),
    ])
    func unify(_ input: String, _ expected: String) {
        let r = TextNormalizer.unify(input)
        #expect(r.text == expected, "\(input.debugDescription) → \(r.text.debugDescription)")
        #expect(!r.hasUnclosedFence)
    }

    @Test func unclosedFenceIsReported() {
        #expect(TextNormalizer.unify("Here:\n```python\nprint(1)\n").hasUnclosedFence)
        #expect(TextNormalizer.unify("```\na\n```\n```js\nb").hasUnclosedFence)
        #expect(!TextNormalizer.unify("```\na\n```").hasUnclosedFence)
        // A longer run of backticks inside does not close a shorter fence wrongly, and an
        // info string after backticks does not close a fence.
        #expect(TextNormalizer.unify("```\na\n```python\n").hasUnclosedFence)
    }

    /// The quick "nothing to do" check must never claim a text is unchanged when it is not.
    @Test func quickCheckAgreesWithFullRules() {
        let pieces = ["a", " ", "\n", "\t", "\r", "`", "```", "~~~", "b c", "\n\n", "é"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let s = (0..<Int.random(in: 0...8, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            var copy = s
            copy.withUTF8 { buf in
                var unclosed = false
                if TextNormalizer.isSurelyUnchanged(buf) {
                    #expect(TextNormalizer.unifyBytes(buf, unclosedFence: &unclosed) == nil, "\(s.debugDescription)")
                }
            }
        }
    }
}
