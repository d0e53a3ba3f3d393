import Foundation
import Testing

/// gra-ifd through the built binary against gra-testserver scripted with known prompt
/// log-probabilities: the exact IFD, offsets in Unicode scalars, the cache, the dry run, and
/// the stop with exit 69 when a server gives no prompt log-probabilities.
@Suite struct IFDCLITests {
    /// Mean negative log-likelihood of the scored (non-nil) log-probabilities.
    func meanNLL(_ lps: [Double]) -> Double { -lps.reduce(0, +) / Double(lps.count) }

    /// The value gra writes: rounded to 4 decimals.
    func rounded(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }

    func ifd(_ record: [String: Any]) -> [String: Any]? {
        (record["gra"] as? [String: Any])?["ifd"] as? [String: Any]
    }

    func write(_ text: String, _ name: String, in dir: URL) throws {
        try Data(text.utf8).write(to: dir.appendingPathComponent(name))
    }

    /// Two samples, each prompt with scripted log-probabilities. The second is French with an
    /// emoji (two scalars, six bytes), so counting the boundary in bytes instead of scalars moves
    /// it two tokens into the response and changes the score.
    @Test func exactScoreFromScriptedLogprobs() throws {
        let dir = ToolRunner.scratch()
        // "Name a warm colour.\n\nRed is warm.": Name,␠,a,␠,warm,␠,colour.,\n\n | Red,␠,is,␠,warm.
        let given1 = [-0.5, -0.1, -1.5, -0.1, -0.25]
        let conditional1 = "[null,-1,-1,-1,-1,-1,-1,-1," + given1.map { "\($0)" }.joined(separator: ",") + "]"
        // "Red is warm." alone: Red (null, the first token), ␠, is, ␠, warm.
        let alone1 = [-0.2, -2.0, -0.2, -3.1]
        // "Nomme une couleur ☀️.\n\nLe rouge — très chaud.": 8 context tokens | 9 response tokens.
        let given2 = [-0.3, -0.1, -2.5, -0.1, -0.7, -0.1, -1.9, -0.1, -0.05]
        let conditional2 = "[null,-1,-1,-1,-1,-1,-1,-1," + given2.map { "\($0)" }.joined(separator: ",") + "]"
        let alone2 = [-0.1, -3.0, -0.1, -2.2, -0.1, -1.0, -0.1, -0.6]
        func list(_ xs: [Double]) -> String { "[null," + xs.map { "\($0)" }.joined(separator: ",") + "]" }
        try write(
            """
            {"rules":[
            {"path":"/v1/completions","contains":"Name a warm colour.","token_logprobs":\(conditional1)},
            {"path":"/v1/completions","contains":"Red is warm.","token_logprobs":\(list(alone1))},
            {"path":"/v1/completions","contains":"Nomme une couleur","token_logprobs":\(conditional2)},
            {"path":"/v1/completions","contains":"Le rouge","token_logprobs":\(list(alone2))}
            ]}
            """, "script.json", in: dir)
        try write(
            """
            {"id":"s1","instruction":"Name a warm colour.","output":"Red is warm.","keep":[1,2]}
            {"id":"s2","instruction":"Nomme une couleur ☀️.","response":"Le rouge — très chaud."}

            """, "in.ndjson", in: dir)
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server --script script.json
                gra-ifd --model m1@$URL --cache cache --stats stats.json < in.ndjson > out.ndjson
                echo "status $? requests $(grep -c '"path":"/v1/completions"' log.ndjson)"
                gra-ifd --model m1@$URL --cache cache < in.ndjson > again.ndjson
                echo "status $? requests $(grep -c '"path":"/v1/completions"' log.ndjson)"
                cmp out.ndjson again.ndjson && echo same
                """, in: dir)
        // Two prompts per sample and the probe; the rerun sends none.
        #expect(r.stdoutLines == ["status 0 requests 5", "status 0 requests 5", "same"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == ["s1", "s2"])
        for (record, given, alone) in [(out[0], given1, alone1), (out[1], given2, alone2)] {
            let section = try #require(ifd(record))
            let expected = exp(meanNLL(given) - meanNLL(alone))
            #expect(section["score"] as? Double == rounded(expected), "\(section)")
            #expect(section["ppl_given_instruction"] as? Double == rounded(exp(meanNLL(given))))
            #expect(section["ppl_response"] as? Double == rounded(exp(meanNLL(alone))))
            #expect(section["response_tokens"] as? Int == given.count)
            #expect(section["model"] as? String == "m1")
        }
        // The record is otherwise as it came.
        let text = try String(contentsOf: dir.appendingPathComponent("out.ndjson"), encoding: .utf8)
        #expect(
            text.hasPrefix(#"{"id":"s1","instruction":"Name a warm colour.","output":"Red is warm.","keep":[1,2],"#))

        // What was asked: the context then the response, and the response alone, echoed.
        let bodies = try jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson"))).compactMap {
            $0["body"] as? [String: Any]
        }
        let prompts = bodies.compactMap { $0["prompt"] as? String }
        #expect(prompts.contains("Name a warm colour.\n\nRed is warm."))
        #expect(prompts.contains("Red is warm."))
        #expect(prompts.contains("Nomme une couleur ☀️.\n\nLe rouge — très chaud."))
        for body in bodies {
            #expect(body["echo"] as? Bool == true)
            #expect(body["logprobs"] as? Int == 1)
            #expect(body["max_tokens"] as? Int == 1)
        }
        let stats = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("stats.json")))
                as? [String: Any])
        #expect(stats["written"] as? Int == 2, "\(stats)")
    }

    /// --prompt sets the context; the input is part of it; a template naming a field a sample
    /// does not have fails the record, named.
    @Test func contextTemplateAndInput() throws {
        let dir = ToolRunner.scratch()
        try write("### Instruction:\n{{instruction}}\n{{input}}\n### Response:\n", "context.txt", in: dir)
        try write("{{instruction}} {{topic}}", "bad.txt", in: dir)
        try write(
            #"{"id":"a","instruction":"Translate","input":"chat","output":"cat is the word"}"# + "\n", "in.ndjson",
            in: dir)
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                start_server
                gra-ifd --model m1@$URL --no-cache --prompt context.txt < in.ndjson > out.ndjson
                echo "status $?"
                gra-ifd --model m1@$URL --no-cache --prompt bad.txt --errors bad.errors < in.ndjson > bad.ndjson
                echo "status $? $(wc -l < bad.ndjson)"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0", "status 75 0"], "\(r.stderr)")
        let prompts = try jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson"))).compactMap {
            ($0["body"] as? [String: Any])?["prompt"] as? String
        }
        #expect(prompts.contains("### Instruction:\nTranslate\nchat\n### Response:\ncat is the word"))
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect((ifd(out[0])?["score"] as? Double ?? 0) > 0)
        let errors = try String(contentsOf: dir.appendingPathComponent("bad.errors"), encoding: .utf8)
        #expect(errors.contains("the context template uses 'topic'"), "\(errors)")
    }

    /// A server that answers /v1/completions without the prompt's log-probabilities — llama.cpp's
    /// own reply (only the generated token's, as 'content'), a server ignoring echo, SGLang's -1
    /// offsets — stops the run before any record, naming the server, with exit 69 and one request.
    @Test func serverWithoutPromptLogprobsStopsTheRun() throws {
        let llamaCpp = #"""
            {"choices":[{"text":"\"","index":0,"logprobs":{"content":[{"id":38,"token":"\"","bytes":[34],\#
            "logprob":-2.38e-07,"top_logprobs":[]}]},"finish_reason":"length"}],"created":1796425940,\#
            "model":"tiny.gguf","object":"text_completion","usage":{"completion_tokens":1,"prompt_tokens":17,\#
            "total_tokens":18}}
            """#
        let noEcho = #"""
            {"choices":[{"text":" the","index":0,"logprobs":{"tokens":[" the"],"token_logprobs":[-1.0],\#
            "top_logprobs":[null],"text_offset":[0]},"finish_reason":"length"}]}
            """#
        let sglang = #"""
            {"choices":[{"text":"The quick brown fox jumps over the lazy dog. a","index":0,"logprobs":\#
            {"tokens":["The"," quick"," a"],"token_logprobs":[null,-2.0,-1.0],"top_logprobs":[null,null,null],\#
            "text_offset":[-1,-1,-1]},"finish_reason":"length"}]}
            """#
        let cases = [
            (
                llamaCpp,
                "the reply holds the generated token's log-probabilities only ('content'), none of the prompt's"
            ),
            (noEcho, "the reply does not echo the prompt: the server ignored echo: true"),
            (sglang, "text_offset[0] is -1")
        ]
        for (body, reason) in cases {
            let dir = ToolRunner.scratch()
            let quoted = String(decoding: try JSONSerialization.data(withJSONObject: [body]), as: UTF8.self)
            try write(
                #"{"rules":[{"path":"/v1/completions","status":200,"body":\#(quoted.dropFirst().dropLast())}]}"#,
                "script.json", in: dir)
            try write(#"{"id":"a","instruction":"Say hi","output":"Hello there"}"# + "\n", "in.ndjson", in: dir)
            let r = try ToolRunner.sh(
                MapCLITests.prelude + """
                    start_server --script script.json --models m1
                    gra-ifd --model m1@$URL --no-cache < in.ndjson > out.ndjson
                    echo "status $? out $(wc -c < out.ndjson) requests $(grep -c '"path":"/v1/completions"' log.ndjson)"
                    echo "$URL"
                    """, in: dir)
            #expect(r.stdoutLines.first == "status 69 out 0 requests 1", "\(r.stderr)")
            let url = r.stdoutLines.last ?? "?"
            #expect(r.stderr.contains("gra-ifd: error: cannot score prompts with m1: \(url) (model m1): \(reason)"))
            #expect(r.stderr.contains("as vLLM gives them (llama.cpp, Ollama and SGLang do not)"), "\(r.stderr)")
            #expect(!r.stderr.contains("does not list"))
        }
    }

    /// --dry-run sends nothing (no server runs) and lists both prompts of every sample.
    @Test func dryRunListsBothPrompts() throws {
        let dir = ToolRunner.scratch()
        try write(
            #"{"id":"a","instruction":"Say hi","output":"Hello there"}"# + "\n"
                + #"{"id":"b","instruction":"Say bye","output":"Goodbye now"}"# + "\n", "in.ndjson", in: dir)
        let r = try ToolRunner.sh(
            """
            gra-ifd --model m1@http://127.0.0.1:9/v1 --no-cache --dry-run < in.ndjson > listed.ndjson
            echo "status $?"
            """,
            in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        #expect(r.stderr.contains("dry run: 2 records, 4 requests listed"))
        let listed = try jsonLines(Data(contentsOf: dir.appendingPathComponent("listed.ndjson")))
        #expect(listed.count == 4)
        let prompts = listed.compactMap { ($0["request"] as? [String: Any])?["prompt"] as? String }
        #expect(Set(prompts) == ["Say hi\n\nHello there", "Hello there", "Say bye\n\nGoodbye now", "Goodbye now"])
        #expect(listed.allSatisfy { $0["stage"] as? String == "gra-ifd" && $0["cached"] as? Bool == false })
    }
}
