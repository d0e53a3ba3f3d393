import Testing

@testable import GRAKit

#if canImport(Glibc)
import Glibc
#endif

@Suite("Decoding what servers send (docs/SERVERS.md)")
struct WireDecodingTests {
    func decode(_ text: String) -> Result<ChatReply, ReplyProblem> { LLMClient.decodeChat(Array(text.utf8)) }

    @Test func vLLMNullsAndReasoningFields() throws {
        let r = try decode(
            #"""
            {"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi",\#
            "reasoning_content":"because","tool_calls":[]},"finish_reason":"stop","stop_reason":null,\#
            "logprobs":null}],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7},\#
            "system_fingerprint":null,"kv_transfer_params":null}
            """#
        ).get()
        #expect(r.content == "hi")
        #expect(r.reasoning == "because")
        #expect(r.promptTokens == 5 && r.completionTokens == 2)
        #expect(try decode(#"{"choices":[{"message":{"content":"a","reasoning":"r"}}]}"#).get().reasoning == "r")
    }

    @Test func inlineThinkIsSplitOff() throws {
        let r = try decode(#"{"choices":[{"message":{"content":"<think>\nhmm\n</think>\n\nAnswer"}}]}"#).get()
        #expect(r.content == "Answer")
        #expect(r.reasoning == "hmm")
        #expect(LLMClient.splitThink("reasoning only</think>final").answer == "final")
        #expect(LLMClient.splitThink("text with <think> later</think> x").thought == nil)
    }

    @Test func nullContentAndContentParts() throws {
        #expect(try decode(#"{"choices":[{"message":{"role":"assistant","content":null}}]}"#).get().content == nil)
        #expect(
            try decode(
                #"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#
            ).get().content == "ab")
    }

    @Test(arguments: [
        (#"{"id":"x"}"#, "no choices"),
        (#"{"choices":[]}"#, "no choices"),
        (#"{"choices":["#, "not JSON"),
        (#"{"error":{"message":"boom"}}"#, "boom")
    ])
    func malformedBodies(_ body: String, _ fragment: String) {
        guard case .failure(let p) = decode(body) else {
            Issue.record("decoded \(body)")
            return
        }
        #expect(p.description.contains(fragment))
    }

    @Test(arguments: [
        (#"{"error":{"message":"m1","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#, "m1"),
        (#"{"object":"error","message":"m2","type":"BadRequestError","param":null,"code":400}"#, "m2"),
        (#"{"error":"m3"}"#, "m3"),
        (#"{"detail":"m4"}"#, "m4"),
        ("<html>503 loading</html>\n", "<html>503 loading</html>"),
        ("", "(empty body)")
    ])
    func errorShapes(_ body: String, _ message: String) {
        #expect(LLMClient.errorMessage(Array(body.utf8)) == message)
    }
}
