import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reply parsing (docs/ARCHITECTURE.md, Replies)")
struct ReplyParsingTests {
    let schema = try! JSONSchema(
        JSONParser.parse(
            #"""
            {"type":"object","properties":{"score":{"type":"integer","minimum":1,"maximum":10},\#
            "comment":{"type":"string"}},"required":["score","comment"],"additionalProperties":false}
            """#
        ))

    func parse(_ reply: String) -> (JSONValue?, String?) {
        switch ReplyJSON.extract(reply) {
        case .failure(let p): return (nil, p.description)
        case .success(let v): return (v, schema.violation(v))
        }
    }

    @Test func wholeReplyThinkBlocksFencesAndLastObject() {
        #expect(parse(#"{"score": 8, "comment": "good"}"#).1 == nil)
        #expect(
            parse("<think>The answer is {\"score\": 2}?</think>\n{\"score\": 9, \"comment\": \"fine\"}").0?
                .objectValue?["score"] == .number("9"))
        #expect(
            parse("Here you go:\n```json\n{\"score\": 3, \"comment\": \"meh\"}\n```\nThanks").0?.objectValue?["score"]
                == .number("3"))
        #expect(
            parse("I rate it {\"score\": 4, \"comment\": \"ok\"} overall.").0?.objectValue?["score"] == .number("4"))
    }

    @Test func proseIsAFailureNeverAScore() {
        let (v, problem) = parse("I would give this a 7 out of 10.")
        #expect(v == nil)
        #expect(problem?.contains("no JSON object") == true)
    }

    @Test func outOfRangeAndWrongTypesAreViolationsNotClamped() {
        #expect(parse(#"{"score": 11, "comment": "x"}"#).1 == "$.score is 11.0, above the maximum 10.0")
        #expect(parse(#"{"score": "seven", "comment": "x"}"#).1 == "$.score should be integer, not string")
        #expect(parse(#"{"score": 7.5, "comment": "x"}"#).1 == "$.score should be integer, not number")
        #expect(parse(#"{"score": 7}"#).1 == "$ is missing 'comment'")
        #expect(parse(#"{"score": 7, "comment": "x", "extra": 1}"#).1 == "$ has an unexpected field 'extra'")
    }
}
