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
        ("e\u{301}", "\u{E9}"),  // NFC composes
        ("\u{212B}", "\u{C5}"),  // Angstrom sign → Å
        ("中文\n\n\n日本語", "中文\n\n日本語"),
        ("x\n```\ncode\n\n\n\n  indented\n```\n\n\ny", "x\n```\ncode\n\n\n\n  indented\n```\n\ny"),
        ("~~~py\na\n\n\nb\n~~~", "~~~py\na\n\n\nb\n~~~"),
        ("plain", "plain"),
        ("", "")
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

    /// Fences inside list items: the closing fence indented like its opening one, or further
    /// (GPTeacher's codegen set closes column-0 fences with "    ```"), closes it.
    @Test(arguments: [
        "```cpp\nint main() {\n    return 0;}\n    ```",
        "1. Install:\n\n    ```bash\n    pip install x\n    ```\n2. Run it.",
        "- step\n   ~~~~\n   code\n   ~~~~",
        "\t```\n\tcode\n\t```"
    ])
    func indentedClosingFenceCloses(_ text: String) {
        #expect(!TextNormalizer.unify(text).hasUnclosedFence)
        #expect(!TextNormalizer.hasUnclosedFence(text))
    }

    /// The check alone (`--no-normalize`) agrees with the one `unify` makes.
    @Test func fenceCheckAloneAgreesWithUnify() {
        let pieces = ["a", " ", "    ", "\n", "\t", "\r\n", "`", "```", "````", "~~~", "```py", "\n\n", "é"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let s = (0..<Int.random(in: 0...10, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            #expect(
                TextNormalizer.hasUnclosedFence(s) == TextNormalizer.unify(s).hasUnclosedFence, "\(s.debugDescription)")
        }
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
