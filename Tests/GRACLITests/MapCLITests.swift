import Foundation
import Testing

/// gra-map against gra-testserver (a scripted fake OpenAI server on 127.0.0.1), through the
/// built binaries in real shell pipes.
@Suite("gra-map end to end")
struct MapCLITests {
    /// Shell prelude: start a test server with SCRIPT (a file in the scratch dir), export its URL.
    static let prelude = """
        start_server() {
            rm -f url.txt   # a second server in the same directory must not find the first one's
            gra-testserver --port 0 --port-file url.txt --log log.ndjson "$@" 2> server.err &
            SERVER_PID=$!
            trap 'kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null' EXIT
            i=0
            while [ ! -s url.txt ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            URL=$(cat url.txt)
        }
        requests() { grep -c '"path":"/v1/chat/completions"' log.ndjson 2>/dev/null || echo 0; }

        """

    /// A scratch directory holding a prompt template, a server script and input records.
    func setUp(script: String, records: [String], prompt: String = "{{instruction}}") throws -> URL {
        let dir = ToolRunner.scratch()
        try Data(prompt.utf8).write(to: dir.appendingPathComponent("prompt.txt"))
        try Data(script.utf8).write(to: dir.appendingPathComponent("script.json"))
        try Data((records.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        return dir
    }

    func records(_ instructions: [String]) -> [String] {
        instructions.enumerated().map {
            #"""
            {"id":"r\#($0.offset)","instruction":"\#($0.element)","keep":{"n":\#($0.offset),\#
            "big":123456789012345678901234567890}}
            """#
        }
    }

    /// Lines of the server's request log, as objects.
    func log(_ dir: URL) throws -> [[String: Any]] {
        try jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson")))
    }

    func chatPrompts(_ dir: URL) throws -> [String] {
        try log(dir).filter { $0["path"] as? String == "/v1/chat/completions" }.compactMap {
            (($0["body"] as? [String: Any])?["messages"] as? [[String: Any]])?.last?["content"] as? String
        }
    }

    static let fast = "GRA_RETRY_BASE_DELAY=0.02"

    @Test func repliesLandInTheFieldInInputOrder() throws {
        let inputs = (0..<60).map { "question \($0)" }
        let dir = try setUp(script: #"{"rules":[{"contains":"question 3","delay_ms":300}]}"#, records: records(inputs))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into gra.map.answer --model m1@$URL --cache cache --max-in-flight 8 < \
                in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == inputs.indices.map { "r\($0)" })
        for (i, o) in out.enumerated() {
            #expect(
                ((o["gra"] as? [String: Any])?["map"] as? [String: Any])?["answer"] as? String == "echo: question \(i)")
        }
        // Unknown fields, big integers included, pass through untouched.
        let text = try String(contentsOf: dir.appendingPathComponent("out.ndjson"), encoding: .utf8)
        #expect(text.contains(#""keep":{"n":59,"big":123456789012345678901234567890}"#))
        #expect(r.stderr.contains("60/60 done"))
    }

    /// Records that ask the same request (same prompt, model and parameters) while it is on its
    /// way share one send and one answer, so the run and its rerun from the cache agree: the
    /// server here answers each send differently (the first "A", the next ones "B").
    @Test func identicalRequestsInFlightShareOneAnswer() throws {
        let inputs = ["same question", "same question", "other", "same question"]
        let script = #"""
            {"rules":[{"contains":"same question","times":1,"delay_ms":400,"reply":"A"},\#
            {"contains":"same question","reply":"B"}]}
            """#
        let dir = try setUp(script: script, records: records(inputs))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into gra.map.answer --model m1@$URL --cache cache --max-in-flight 8 \
                --stats stats.json < in.ndjson > out.ndjson
                echo "status $? requests $(requests)"
                gra-map --prompt prompt.txt --into gra.map.answer --model m1@$URL --cache cache \\
                < in.ndjson > again.ndjson
                echo "again $? requests $(requests)"
                cmp out.ndjson again.ndjson && echo same
                """, in: dir)
        #expect(r.stdoutLines == ["status 0 requests 2", "again 0 requests 2", "same"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(
            out.map { ((($0["gra"] as? [String: Any])?["map"] as? [String: Any])?["answer"] as? String) ?? "" } == [
                "A", "A", "echo: other", "A"
            ])
        let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("stats.json")))
        let m1 = ((stats as? [String: Any])?["models"] as? [String: Any])?["m1"] as? [String: Any]
        #expect(m1?["requests"] as? Int == 2 && m1?["cache_hits"] as? Int == 2, "\(String(describing: m1))")
    }

    /// The LLM stages read a JSON array of records as gra-format does (the bundled Alpaca seeds
    /// are one): the same records and replies as from NDJSON, from a file and from a pipe; a
    /// bad element is named by its line and element number.
    @Test func jsonArrayInputGivesTheNDJSONRecords() throws {
        let inputs = (0..<40).map { "question \($0)" }
        let dir = try setUp(script: #"{"rules":[]}"#, records: records(inputs))
        let objects = records(inputs).joined(separator: ",\n  ")
        try Data("[\n  \(objects)\n]\n".utf8).write(to: dir.appendingPathComponent("in.json"))
        try Data("[{\"instruction\":\"a\"},\n 5]".utf8).write(to: dir.appendingPathComponent("bad.json"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache < in.ndjson > want.ndjson
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache in.json > file.ndjson
                cat in.json | gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache > pipe.ndjson
                cmp want.ndjson file.ndjson && cmp want.ndjson pipe.ndjson && wc -l < want.ndjson
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache bad.json > /dev/null 2> bad.err
                echo "status $?"
                cat bad.err
                """, in: dir)
        #expect(r.stdoutLines.prefix(2) == ["40", "status 65"], "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutText.contains("bad.json:2 (array element 2): expected a JSON object"), "\(r.stdoutText)")
    }

    /// --unordered writes replies as they come: a slow first record no longer holds back the rest.
    @Test func unorderedWritesAsRepliesArrive() throws {
        let dir = try setUp(
            script: #"{"rules":[{"contains":"SLOW","delay_ms":400}]}"#, records: records(["SLOW", "b", "c", "d"]))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --unordered < in.ndjson > \
                unordered.ndjson
                gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache < in.ndjson > ordered.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let unordered = try jsonLines(Data(contentsOf: dir.appendingPathComponent("unordered.ndjson"))).map {
            $0["id"] as? String
        }
        let ordered = try jsonLines(Data(contentsOf: dir.appendingPathComponent("ordered.ndjson"))).map {
            $0["id"] as? String
        }
        #expect(ordered == ["r0", "r1", "r2", "r3"])
        #expect(unordered.last == "r0", "\(unordered)")
        #expect(Set(unordered.compactMap { $0 }) == ["r0", "r1", "r2", "r3"])
    }

    /// Each fault kind is retried and then succeeds; the log shows exactly the extra attempts.
    @Test func everyFaultKindIsRetriedThenSucceeds() throws {
        let script = #"""
            {"rules":[
              {"contains":"F500","times":1,"status":500,"body":{"error":{"message":"boom"}}},
              {"contains":"F503","times":2,"status":503,"body":"overloaded"},
              {"contains":"F429","times":1,"status":429},
              {"contains":"FRESET","times":1,"fault":"reset"},
              {"contains":"FMID","times":1,"fault":"reset_mid_body"},
              {"contains":"FTRUNC","times":1,"fault":"truncate"},
              {"contains":"FMAL","times":1,"fault":"malformed"},
              {"contains":"FSLOW","times":1,"fault":"hang"}
            ]}
            """#
        let inputs = ["F500", "F503", "F429", "FRESET", "FMID", "FTRUNC", "FMAL", "FSLOW", "plain"]
        let dir = try setUp(script: script, records: records(inputs))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                \(Self.fast) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --timeout 2 --errors \
                err.ndjson < in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["x"] as? String } == inputs.map { "echo: \($0)" })
        let prompts = try chatPrompts(dir)
        for (input, expected) in [
            ("F500", 2), ("F503", 3), ("F429", 2), ("FRESET", 2), ("FMID", 2), ("FTRUNC", 2), ("FMAL", 2), ("FSLOW", 2),
            ("plain", 1)
        ] {
            #expect(prompts.filter { $0 == input }.count == expected, "\(input): \(prompts)")
        }
        #expect(r.stderr.contains("retry 2/5"))
    }

    /// A request that keeps failing ends in the errors file (with status and attempts) and the
    /// stage exits 75; the other records are still written, in order.
    @Test func persistentFailuresAreReportedAndAccountedFor() throws {
        let dir = try setUp(
            script: #"{"rules":[{"contains":"BROKEN","status":500,"body":{"error":{"message":"kaput"}}}]}"#,
            records: records(["a", "BROKEN", "c"]))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                \(Self.fast) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --max-attempts 3 \
                --errors err.ndjson < in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 75"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == ["r0", "r2"])
        let errors = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err.ndjson")))
        #expect(errors.count == 1)
        #expect(errors[0]["id"] as? String == "r1")
        #expect(errors[0]["status"] as? Int == 500)
        #expect(errors[0]["attempts"] as? Int == 3)
        #expect(errors[0]["stage"] as? String == "gra-map")
        #expect((errors[0]["reason"] as? String)?.contains("HTTP 500") == true)
        #expect((errors[0]["reason"] as? String)?.contains("kaput") == true)
        #expect((errors[0]["record"] as? [String: Any])?["instruction"] as? String == "BROKEN")
        #expect(errors[0]["where"] as? String == "line 2")
        #expect(try chatPrompts(dir).filter { $0 == "BROKEN" }.count == 3)
        // Read from a named file, the error names the file and line.
        let again = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                \(Self.fast) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --max-attempts 1 \
                --errors err2.ndjson in.ndjson > /dev/null
                echo "status $?"
                """, in: dir)
        #expect(again.stdoutLines == ["status 75"], "\(again.stderr)")
        let fromFile = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err2.ndjson")))
        #expect(fromFile.map { $0["where"] as? String } == ["in.ndjson:2"])
    }

    @Test func retryAfterIsHonoured() throws {
        let dir = try setUp(
            script:
                #"""
                {"rules":[{"contains":"WAIT","times":1,"status":429,"headers":{"Retry-After":"1"},\#
                "body":{"error":{"message":"slow down"}}}]}
                """#,
            records: records(["WAIT"]))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                \(Self.fast) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache < in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let times = try log(dir).filter { $0["path"] as? String == "/v1/chat/completions" }.compactMap {
            $0["time"] as? Double
        }
        #expect(times.count == 2)
        // The backoff alone would be ~0.02 s; the server asked for 1 s.
        if times.count == 2 { #expect(times[1] - times[0] >= 0.95, "waited \(times[1] - times[0]) s") }
    }

    @Test(arguments: [400, 403, 404])
    func clientErrorsAreNotRetried(_ status: Int) throws {
        let dir = try setUp(
            script:
                #"{"rules":[{"contains":"BAD","status":\#(status),"body":{"error":{"message":"nope \#(status)"}}}]}"#,
            records: records(["BAD"]))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                \(Self.fast) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --errors err.ndjson < \
                in.ndjson
                echo "status $?"
                """, in: dir)
        // A refused key (403) is not for a rerun to fix: 77 (EX_NOPERM), and nothing more is sent.
        #expect(r.stdoutLines == [status == 403 ? "status 77" : "status 75"])
        #expect(try chatPrompts(dir).count == 1)
        let e = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err.ndjson")))
        #expect((e.first?["reason"] as? String)?.contains("HTTP \(status) from http://127.0.0.1:") == true)
        #expect((e.first?["reason"] as? String)?.contains("(model m1): nope \(status)") == true)
    }

    /// A wrong key gives a clear 401 error that never shows the key: the start-up probe meets
    /// it, so no chat request is sent and the run ends with 77 (EX_NOPERM).
    @Test func unauthorizedNeverPrintsTheKey() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: records(["a"]))
        let secret = "sk-test-VERYSECRET-0123456789"
        let r = try ToolRunner.sh(
            Self.prelude + """
                GRA_TESTSERVER_KEY=right-key start_server --script script.json
                OPENAI_API_KEY=\(secret) gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --errors \
                err.ndjson --stats stats.json < in.ndjson
                echo "status $?"
                cat err.ndjson stats.json
                """, in: dir)
        #expect(r.stdoutLines.first == "status 77")
        #expect(r.stdoutText.contains("HTTP 401"))
        #expect(r.stderr.contains("HTTP 401") && r.stderr.contains("$OPENAI_API_KEY"))
        #expect(!r.stdoutText.contains("VERYSECRET") && !r.stderr.contains("VERYSECRET"))
        #expect(try chatPrompts(dir).count == 0)
        let logText = try String(contentsOf: dir.appendingPathComponent("log.ndjson"), encoding: .utf8)
        #expect(!logText.contains("VERYSECRET"))
    }

    /// Between transfers libcurl stops watching a kept-alive connection, and gra leaves its
    /// socket in the epoll set. A server that closes idle connections (uvicorn after 5 s) makes
    /// that socket readable while gra-map waits on a slow producer: gra must drop it, not spin
    /// on it, and the next record must still get its answer on a new connection.
    @Test func idleConnectionClosedByTheServerIsNotSpunOn() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: [])
        // CPU ticks (1/100 s) gra-map spends between 0.4 s and 1.2 s, while it waits for its
        // second record; the server closes the idle connection 50 ms after the first reply.
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --idle-timeout 50
                { printf '%s\n' '{"id":"a","instruction":"first"}'; sleep 1.6; \
                  printf '%s\n' '{"id":"b","instruction":"second"}'; } \
                    | gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --max-in-flight 1 > out.ndjson &
                MAP=$!
                sleep 0.4
                a=$(awk '{ print $14 + $15 }' /proc/$MAP/stat)
                sleep 0.8
                b=$(awk '{ print $14 + $15 }' /proc/$MAP/stat)
                wait $MAP
                echo "status $?"
                echo "ticks $((b - a))"
                """, in: dir)
        #expect(r.stdoutLines.first == "status 0", "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == ["a", "b"])
        #expect(out.allSatisfy { $0["x"] is String })
        // The two records went on two connections: the server closed the first while gra-map
        // waited for input (so the test exercised what it is about).
        let chats = try log(dir).filter { $0["path"] as? String == "/v1/chat/completions" }
        #expect(chats.count == 2)
        #expect(Set(chats.compactMap { $0["connection"] as? Int }).count == 2)
        // Waiting costs nothing; spinning on the closed socket takes most of a core (~80).
        let ticks = r.stdoutLines.last.flatMap { Int($0.split(separator: " ").last ?? "") }
        #expect(
            ticks != nil && ticks! < 20, "gra-map used \(ticks ?? -1) ticks of CPU while it waited: \(r.stdoutLines)")
    }

    /// Proxy variables are honoured as libcurl honours them: gra only spares libcurl its
    /// search of the environment on every request when none is set.
    @Test func proxyVariablesAreHonoured() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: records(["a"]))
        let map =
            """
            gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --max-attempts 1 --errors err.ndjson \
            < in.ndjson
            """
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
                http_proxy=http://127.0.0.1:9 \(map) > out1.ndjson 2> err1.txt
                echo "proxied $? $(requests | head -1)"
                http_proxy=http://127.0.0.1:9 no_proxy=127.0.0.1 \(map) > out2.ndjson
                echo "excepted $? $(requests | head -1)"
                \(map) > out3.ndjson
                echo "direct $? $(requests | head -1)"
                cat err1.txt
                """, in: dir)
        // Through a proxy that is not there the server cannot be reached: 69, nothing sent.
        #expect(
            Array(r.stdoutLines.prefix(3)) == ["proxied 69 0", "excepted 0 1", "direct 0 2"],
            "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutText.contains("Couldn't connect"), "\(r.stdoutText)")
    }

    /// Rerunning the same command is served from the cache: the server sees no new request.
    @Test func rerunIsServedFromTheCache() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: records((0..<20).map { "q\($0)" }))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache < in.ndjson > out1.ndjson
                echo "first $(requests)"
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache --stats stats.json < in.ndjson > \
                out2.ndjson
                echo "second $(requests)"
                cmp out1.ndjson out2.ndjson && echo same
                echo "changed prompt" > prompt2.txt; echo '{{instruction}} again' > prompt2.txt
                gra-map --prompt prompt2.txt --into x --model m1@$URL --cache cache < in.ndjson > /dev/null
                echo "third $(requests)"
                """, in: dir)
        #expect(r.stdoutLines == ["first 20", "second 20", "same", "third 40"], "\(r.stderr)")
        let stats = try jsonLines(Data(contentsOf: dir.appendingPathComponent("stats.json")))
        #expect(stats.first?["cached"] as? Int == 20)
        #expect(((stats.first?["models"] as? [String: Any])?["m1"] as? [String: Any])?["cache_hits"] as? Int == 20)
    }

    /// Two processes share one cache at once; a third run then needs no request at all.
    @Test func twoProcessesShareOneCache() throws {
        let dir = try setUp(script: #"{"rules":[{"delay_ms":20}]}"#, records: records((0..<200).map { "q\($0)" }))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                head -n 120 in.ndjson > a.ndjson; tail -n 120 in.ndjson > b.ndjson
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < a.ndjson > a.out & A=$!
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < b.ndjson > b.out & B=$!
                wait $A; echo "a $?"; wait $B; echo "b $?"
                before=$(requests)
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < in.ndjson > all.out
                echo "all $? $(($(requests) - before)) $(wc -l < all.out)"
                """, in: dir)
        #expect(r.stdoutLines == ["a 0", "b 0", "all 0 0 200"], "\(r.stderr)")
    }

    /// A cache file that is not a database is moved aside; the run goes on.
    @Test func damagedCacheFileIsMovedAsideNotFatal() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: records(["a", "b"]))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < in.ndjson > /dev/null
                head -c 3000 cache/responses.sqlite3 > t && mv t cache/responses.sqlite3
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < in.ndjson > out.ndjson
                echo "status $? $(wc -l < out.ndjson)"
                ls cache | grep -c corrupt
                """, in: dir)
        #expect(r.stdoutLines.first == "status 0 2", "\(r.stderr)")
        #expect(r.stderr.contains("moved it to"))
    }

    /// kill -9 in the middle of a run, then the same command again: only the requests that
    /// never finished are sent; a torn write-ahead log tail is ignored.
    @Test func killNineThenRerunSendsOnlyTheUnfinished() throws {
        let slow = (0..<5).map { "SLOW\($0)" }
        let quick = (0..<30).map { "quick\($0)" }
        let dir = try setUp(
            script: #"{"rules":[{"contains":"SLOW","times":5,"delay_ms":30000}]}"#, records: records(slow + quick))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < in.ndjson > out1.ndjson 2> \
                map1.err &
                MAP=$!
                i=0
                while [ "$(requests)" -lt 35 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
                sleep 1
                kill -9 $MAP; wait $MAP 2>/dev/null
                echo "first $(requests)"
                # A torn tail: cut the write-ahead log in the middle of its last frame, if there is one.
                if [ -s cache/responses.sqlite3-wal ]; then
                    size=$(wc -c < cache/responses.sqlite3-wal); truncate -s $((size - 100)) cache/responses.sqlite3-wal
                fi
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache -q < in.ndjson > out2.ndjson
                echo "rerun $? $(wc -l < out2.ndjson)"
                """, in: dir)
        let lines = r.stdoutLines
        #expect(lines.first == "first 35", "\(r.stdoutText) \(r.stderr)")
        #expect(lines.last == "rerun 0 35", "\(r.stdoutText) \(r.stderr)")
        let prompts = try chatPrompts(dir)
        let rerun = Array(prompts.dropFirst(35))
        // The five slow ones, plus at most the one reply in the torn last frame.
        #expect(Set(slow).isSubset(of: Set(rerun)), "\(rerun)")
        #expect(rerun.count <= 6, "\(rerun)")
    }

    /// JSON replies: extracted strictly, validated, re-asked, and failed, never guessed.
    @Test func jsonRepliesAreValidatedAndReasked() throws {
        let script = #"""
            {"rules":[
              {"contains":"GOOD","reply":"{\"score\": 8, \"comment\": \"fine\"}"},
              {"contains":"THINK","reply":"<think>maybe {\"score\": 1}</think>{\"score\": 9, \"comment\": \"ok\"}"},
              {"contains":"FENCED","reply":"Sure!\n```json\n{\"score\": 3, \"comment\": \"meh\"}\n```"},
              {"contains":"ELEVEN","reply":"{\"score\": 11, \"comment\": \"too high\"}"},
              {"contains":"SEVEN","reply":"{\"score\": \"seven\", \"comment\": \"words\"}"},
              {"contains":"PROSE","reply":"I would rate this 7 out of 10."},
              {"contains":"ONCE","times":1,"reply":"no json here"},
              {"contains":"ONCE","reply":"{\"score\": 5, \"comment\": \"second try\"}"},
              {"contains":"CUT","reply":"{\"score\": 7, \"comm","finish_reason":"length"}
            ]}
            """#
        let dir = try setUp(
            script: script, records: records(["GOOD", "THINK", "FENCED", "ELEVEN", "SEVEN", "PROSE", "ONCE", "CUT"]))
        try Data(
            #"""
            {"type":"object","properties":{"score":{"type":"integer","minimum":1,"maximum":10},\#
            "comment":{"type":"string"}},"required":["score","comment"]}
            """#
            .utf8
        )
        .write(to: dir.appendingPathComponent("schema.json"))
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --json-schema schema.json --into gra.map.review --model m1@$URL \
                --no-cache --max-tokens 16 --errors err.ndjson < in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 75"], "\(r.stderr)")
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        let scores = out.map { (($0["gra"] as? [String: Any])?["map"] as? [String: Any])?["review"] as? [String: Any] }
            .map { $0?["score"] as? Int }
        #expect(out.map { $0["instruction"] as? String } == ["GOOD", "THINK", "FENCED", "ONCE"])
        #expect(scores == [8, 9, 3, 5])
        let errors = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err.ndjson")))
        let reasons = Dictionary(
            uniqueKeysWithValues: errors.map {
                (($0["record"] as? [String: Any])?["instruction"] as? String ?? "", $0["reason"] as? String ?? "")
            })
        #expect(reasons["ELEVEN"]?.contains("above the maximum") == true)
        #expect(reasons["SEVEN"]?.contains("should be integer, not string") == true)
        #expect(reasons["PROSE"]?.contains("no JSON object") == true)
        // Cut off by max_tokens: said so, and not asked again (it would be cut at the same place).
        #expect(reasons["CUT"]?.contains(#"cut off at max_tokens=16 (finish_reason "length")"#) == true, "\(reasons)")
        let prompts = try chatPrompts(dir)
        // 1 try + 2 re-asks for each failure, 2 tries for ONCE.
        #expect(prompts.filter { $0 == "ELEVEN" }.count == 3)
        #expect(prompts.filter { $0 == "ONCE" }.count == 2)
        #expect(prompts.filter { $0 == "CUT" }.count == 1)
        // The schema went to the server as response_format.
        let firstBody =
            try log(dir).first { $0["path"] as? String == "/v1/chat/completions" }?["body"] as? [String: Any]
        #expect((firstBody?["response_format"] as? [String: Any])?["type"] as? String == "json_schema")
    }

    /// Ctrl-C: stop, write the records that are complete (in order), exit 130.
    @Test func interruptWritesWhatIsCompleteAndExits130() throws {
        let dir = try setUp(
            script: #"{"rules":[{"contains":"STUCK","fault":"hang"}]}"#, records: records(["a", "b", "STUCK", "d"]))
        let start = Date()
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --cache cache < in.ndjson > out.ndjson 2> map.err &
                MAP=$!
                i=0
                while [ "$(requests)" -lt 4 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
                sleep 0.3
                kill -INT $MAP
                wait $MAP
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 130"], "\(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 10)
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        #expect(out.map { $0["id"] as? String } == ["r0", "r1"])
    }

    /// A later record without a template's field fails alone, without a request (the first
    /// record lacking it stops the run before any request: UpFrontCheckTests).
    @Test func missingTemplateFieldFailsTheRecordWithoutARequest() throws {
        let dir = try setUp(
            script: #"{"rules":[]}"#, records: [#"{"id":"w","instruction":"q"}"#, #"{"id":"x","question":"q"}"#])
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt prompt.txt --into x --model m1@$URL --no-cache --errors err.ndjson < in.ndjson > \
                out.ndjson
                echo "status $? $(requests | head -1)"
                cat err.ndjson
                """, in: dir)
        #expect(r.stdoutLines.first == "status 75 1")
        #expect(r.stdoutText.contains("the prompt uses 'instruction', missing from the record"))
        #expect(r.stdoutText.contains(#""id":"x""#) && !r.stdoutText.contains(#""id":"w""#))
    }

    @Test func usageErrors() throws {
        let dir = try setUp(script: #"{"rules":[]}"#, records: records(["a"]))
        let noModel = try ToolRunner.sh(
            "env -u OPENAI_BASE_URL -u GRA_MODELS gra-map --prompt prompt.txt --into x < in.ndjson", in: dir)
        #expect(noModel.status == 64)
        #expect(noModel.stderr.contains("no model configured"))
        let badTemplate = try ToolRunner.sh(
            "echo '{{#open}}' > t.txt; gra-map --prompt t.txt --into x --model m@http://127.0.0.1:9/v1 < in.ndjson",
            in: dir)
        #expect(badTemplate.status == 64)
        #expect(badTemplate.stderr.contains("section 'open' is never closed"))
    }
}
