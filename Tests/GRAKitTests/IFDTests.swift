import Foundation
import Testing

@testable import GRAKit

/// IFD's arithmetic and the reading of echoed prompt log-probabilities, per server shape
/// (docs/SERVERS.md, "Prompt log-probabilities").
@Suite struct IFDTests {
    func decode(_ json: String, prompt: String) -> Result<PromptLogprobs, ReplyProblem> {
        PromptLogprobs.decode(Array(json.utf8), prompt: prompt)
    }

    /// vLLM's shape with a BOS token (empty, offset 0, null), a generated token after the
    /// prompt (left out), and offsets in Unicode scalars past an emoji.
    @Test func readsVLLMEcho() throws {
        let prompt = "Hi 👋\n\nYo"
        // <s>, "Hi", " 👋", "\n\n", "Yo", then the generated " !".
        let body = #"""
            {"id":"cmpl-1","object":"text_completion","model":"m","choices":[{"index":0,\#
            "text":"Hi 👋\n\nYo !","logprobs":{"tokens":["<s>","Hi"," 👋","\n\n","Yo"," !"],\#
            "token_logprobs":[null,-1.5,-2.25,-0.5,-9999.0,-0.75],"top_logprobs":[null,{},{},{},{},{}],\#
            "text_offset":[0,0,2,4,6,8]},"finish_reason":"length","stop_reason":null}],\#
            "usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}
            """#
        let lp = try decode(body, prompt: prompt).get()
        #expect(lp.promptLength == 8)
        #expect(lp.offsets == [0, 0, 2, 4, 6])
        #expect(lp.logprobs == [nil, -1.5, -2.25, -0.5, -9999.0])
        // From scalar 6 ("Yo"): the last token only; from 5 the "\n\n" token straddles it and counts.
        #expect(lp.tokens(from: 6).count == 1)
        #expect(lp.tokens(from: 6).sum == -9999.0)
        #expect(lp.tokens(from: 5).count == 2)
        // From 0 the BOS token (nil) is not counted.
        #expect(lp.tokens(from: 0).count == 4)
        #expect(lp.tokens(from: 0).sum == -1.5 - 2.25 - 0.5 - 9999.0)
    }

    /// Perplexities are exp of the mean negative log-likelihood; IFD is their ratio.
    @Test func scoreArithmetic() throws {
        let conditional = PromptLogprobs(logprobs: [nil, -3, -3, -1, -2], offsets: [0, 2, 4, 6, 8], promptLength: 10)
        let alone = PromptLogprobs(logprobs: [nil, -2, -4], offsets: [0, 2, 4], promptLength: 6)
        let s = try IFDScore.compute(conditional: conditional, responseStart: 6, alone: alone).get()
        #expect(s.tokensGivenInstruction == 2)
        #expect(s.tokensAlone == 2)
        #expect(abs(s.perplexityGivenInstruction - exp(1.5)) < 1e-12)
        #expect(abs(s.perplexityAlone - exp(3.0)) < 1e-12)
        #expect(abs(s.value - exp(-1.5)) < 1e-12)
        let section = s.section(model: "m")
        #expect(
            JSONWriter.string(.object(section))
                == #"{"score":0.2231,"ppl_given_instruction":4.4817,"ppl_response":20.0855,"#
                + #""response_tokens":2,"model":"m"}"#
        )
        // A response of one token has nothing to score on its own.
        let one = PromptLogprobs(logprobs: [nil], offsets: [0], promptLength: 3)
        guard case .failure(let why) = IFDScore.compute(conditional: conditional, responseStart: 6, alone: one) else {
            Issue.record("a one-token response scored")
            return
        }
        #expect(why.description.contains("on its own"))
    }

    /// What servers without prompt log-probabilities send is a permanent problem, said plainly;
    /// a body that is not a completion is a malformed (retryable) one.
    @Test func serversWithoutPromptLogprobs() {
        let prompt = "abc def"
        let cases: [(String, String, Bool)] = [
            (#"{"choices":[{"text":"x","logprobs":null}]}"#, "no log-probabilities", true),
            (
                #"{"choices":[{"text":"x","logprobs":{"content":[{"token":"x","logprob":-1}]}}]}"#,
                "generated token's log-probabilities only", true
            ),
            (
                #"{"choices":[{"text":" q","logprobs":{"token_logprobs":[-1],"text_offset":[0]}}]}"#,
                "does not echo the prompt", true
            ),
            (
                #"{"choices":[{"text":"abc def q","logprobs":{"token_logprobs":[null,-1,-2],"#
                    + #""text_offset":[-1,-1,-1]}}]}"#,
                "text_offset[0] is -1", true
            ),
            (
                #"{"choices":[{"text":"abc def","logprobs":{"token_logprobs":[null,-1],"text_offset":[0]}}]}"#,
                "token_logprobs has 2 entries, text_offset 1", false
            ),
            (
                #"{"choices":[{"text":"abc def","logprobs":{"token_logprobs":[null,0.5],"text_offset":[0,3]}}]}"#,
                "token_logprobs[1] is 0.5, not a log-probability", false
            ),
            (
                #"{"choices":[{"text":"abc def","logprobs":{"token_logprobs":[null,-1],"text_offset":[3,0]}}]}"#,
                "goes back", false
            ),
            (#"{"object":"error"}"#, "no 'choices'", false),
            ("<html>", "not a JSON object", false)
        ]
        for (body, reason, permanent) in cases {
            guard case .failure(let why) = decode(body, prompt: prompt) else {
                Issue.record("accepted: \(body)")
                continue
            }
            #expect(why.description.contains(reason), "\(why)")
            #expect(why.permanent == permanent, "\(body)")
        }
    }

    /// The cache key depends on the model, its namespace and the prompt, not on the URL.
    @Test func cacheKey() {
        let a = ModelEndpoint(name: "m", baseURLs: ["http://a/v1"])
        let b = ModelEndpoint(name: "m", baseURLs: ["http://b/v1"])
        var c = a
        c.cacheNamespace = "other"
        let key = LLMClient.promptLogprobsCacheKey
        #expect(key(a, "p") == key(b, "p"))
        #expect(key(a, "p") != key(a, "q"))
        #expect(key(a, "p") != key(c, "p"))
        #expect(key(a, "p") != key(ModelEndpoint(name: "n", baseURLs: ["http://a/v1"]), "p"))
    }
}
