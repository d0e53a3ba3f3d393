import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// gra-testserver as the other tests use it: the built binary, started from a shell script on
/// an ephemeral port and driven with the curl command-line tool. Each test has its own scratch
/// directory and its own server, which the script's EXIT trap always stops.
@Suite("gra-testserver end to end")
struct TestServerTests {
    /// What one scripted session left behind.
    struct Session {
        var outcome: ToolRunner.Outcome
        var dir: URL
        var lines: [String] { outcome.stdoutLines }
        /// The server's request log, one object per line.
        var log: [[String: Any]] { (try? jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson")))) ?? [] }
        var rawLog: String {
            (try? String(contentsOf: dir.appendingPathComponent("log.ndjson"), encoding: .utf8)) ?? ""
        }
        var serverErr: String {
            (try? String(contentsOf: dir.appendingPathComponent("server.err"), encoding: .utf8)) ?? ""
        }
        func file(_ name: String) -> String {
            (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
        }
        /// Line `i` of stdout parsed as a JSON object (an empty object if it is not one).
        func json(_ i: Int) -> [String: Any] {
            guard i < lines.count, let d = lines[i].data(using: .utf8),
                let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
            else { return [:] }
            return o
        }
    }

    /// Starts `gra-testserver ARGS` (with `script` as s.json when given), waits for its URL in
    /// $URL, runs `body`, and stops the server on exit. `chat BODY` posts a chat request.
    static func session(_ args: String = "", script: String? = nil, env: [String: String] = [:], _ body: String) throws
        -> Session
    {
        let dir = ToolRunner.scratch()
        var serverArgs = args
        if let script {
            try Data(script.utf8).write(to: dir.appendingPathComponent("s.json"))
            serverArgs += " --script s.json"
        }
        // The key must come only from `env`, never from the environment the tests run in.
        let keySetup = env["GRA_TESTSERVER_KEY"] == nil ? "unset GRA_TESTSERVER_KEY" : ""
        let prelude = """
            \(keySetup)
            gra-testserver --port 0 --port-file url.txt --log log.ndjson \(serverArgs) 2> server.err &
            pid=$!
            trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
            i=0
            while [ ! -s url.txt ]; do
                i=$((i+1))
                if [ $i -gt 200 ]; then echo "server did not start" >&2; cat server.err >&2; exit 99; fi
                sleep 0.05
            done
            URL=$(cat url.txt)
            chat() { curl -sS --max-time 5 -H 'Content-Type: application/json' "$URL/chat/completions" -d "$1"; echo; }

            """
        let r = try ToolRunner.sh(prelude + body, stdin: Data(), in: dir, env: env)
        return Session(outcome: r, dir: dir)
    }

    /// A chat request body with one user message.
    static func ask(_ text: String, model: String = "m1", extra: String = "") -> String {
        #"""
        {"model":"\#(model)","messages":[{"role":"system","content":"be \#
        brief"},{"role":"user","content":"\#(text)"}]\#(extra)}
        """#
    }

    static func choices(_ o: [String: Any]) -> [[String: Any]] { o["choices"] as? [[String: Any]] ?? [] }
    static func content(_ choice: [String: Any]) -> Any? { (choice["message"] as? [String: Any])?["content"] as Any? }

    // MARK: - Default behaviour

    @Test func echoReplyHasTheOpenAIShape() throws {
        let s = try Self.session(
            "",
            """
            chat '\(Self.ask("hello there world"))'
            chat '\(Self.ask("again", extra: #","n":3"#))'
            chat '{"model":"m1","messages":[{"role":"user","content":[{"type":"text","text":"part \
            one"},{"type":"text","text":"part two"}]}]}'
            curl -sS -D headers.txt -o /dev/null "$URL/chat/completions" -d '\(Self.ask("x"))'
            """)
        #expect(s.outcome.status == 0, "\(s.outcome.stderr)")
        let o = s.json(0)
        #expect(o["object"] as? String == "chat.completion")
        #expect((o["id"] as? String)?.hasPrefix("chatcmpl-") == true)
        #expect(o["model"] as? String == "m1")
        #expect(o["created"] is Int)
        let c = Self.choices(o)
        #expect(c.count == 1)
        #expect(c.first?["index"] as? Int == 0)
        #expect(c.first?["finish_reason"] as? String == "stop")
        #expect((c.first?["message"] as? [String: Any])?["role"] as? String == "assistant")
        #expect(Self.content(c.first ?? [:]) as? String == "echo: hello there world")
        // Words stand in for tokens: "be brief" + "hello there world"; "echo: hello there world".
        let usage = o["usage"] as? [String: Int]
        #expect(usage == ["prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9])

        let n = Self.choices(s.json(1))
        #expect(n.map { $0["index"] as? Int } == [0, 1, 2])
        #expect(n.map { Self.content($0) as? String } == ["echo: again", "echo: again #1", "echo: again #2"])

        #expect(Self.content(Self.choices(s.json(2)).first ?? [:]) as? String == "echo: part one\npart two")
        let headers = s.file("headers.txt").lowercased()
        #expect(headers.contains("content-length:"))
        #expect(headers.contains("content-type: application/json"))
    }

    @Test func modelsHealthAndUnknownPaths() throws {
        let s = try Self.session(
            "--models alpha,beta",
            """
            curl -sS "$URL/models"; echo
            curl -sS "${URL%/v1}/health"; echo
            curl -sS -w ' %{http_code}' "$URL/responses" -d '{}'; echo
            """)
        #expect(s.outcome.status == 0, "\(s.outcome.stderr)")
        let list = s.json(0)
        #expect(list["object"] as? String == "list")
        let data = list["data"] as? [[String: Any]] ?? []
        #expect(data.map { $0["id"] as? String } == ["alpha", "beta"])
        #expect(
            data.allSatisfy {
                $0["object"] as? String == "model" && $0["owned_by"] as? String == "gra-testserver"
                    && $0["created"] as? Int == 0
            })
        #expect(s.lines[1] == "ok")
        #expect(s.lines[2].hasSuffix(" 404"))
        #expect(s.lines[2].contains(#""code":"unknown_url""#))

        // Without --models: the models the script names, else "test-model".
        let named = try Self.session(
            "", script: #"{"rules":[{"model":"x1","reply":"a"},{"model":"x2","reply":"b"},{"model":"x1"}]}"#,
            #"curl -sS "$URL/models"; echo"#)
        #expect((named.json(0)["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["x1", "x2"])
        let plain = try Self.session("", #"curl -sS "$URL/models"; echo"#)
        #expect((plain.json(0)["data"] as? [[String: Any]])?.map { $0["id"] as? String } == ["test-model"])
    }

    @Test func embeddingsAreDeterministicUnitVectors() throws {
        let s = try Self.session(
            "--embedding-dim 8", script: #"{"rules":[{"model":"fixed","embedding":[0.6,0.8]}]}"#,
            """
            curl -sS "$URL/embeddings" -d '{"model":"e1","input":["alpha","beta","alpha"]}'; echo
            curl -sS "$URL/embeddings" -d '{"model":"e1","input":"alpha"}'; echo
            curl -sS "$URL/embeddings" -d '{"model":"fixed","input":["p","q"]}'; echo
            curl -sS -w ' %{http_code}' "$URL/embeddings" -d '{"model":"e1","input":[1,2]}'; echo
            """)
        #expect(s.outcome.status == 0, "\(s.outcome.stderr)")
        let o = s.json(0)
        #expect(o["object"] as? String == "list")
        #expect(o["model"] as? String == "e1")
        #expect((o["usage"] as? [String: Int])?["prompt_tokens"] == 3)
        let data = o["data"] as? [[String: Any]] ?? []
        #expect(data.map { $0["index"] as? Int } == [0, 1, 2])
        #expect(data.allSatisfy { $0["object"] as? String == "embedding" })
        let vectors = data.map { ($0["embedding"] as? [Double]) ?? [] }
        #expect(vectors.count == 3)
        for v in vectors {
            #expect(v.count == 8)
            #expect(abs(v.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5, "not normalized: \(v)")
        }
        #expect(vectors[0] == vectors[2])
        #expect(vectors[0] != vectors[1])
        // Same text in another request: the same vector.
        let again = (s.json(1)["data"] as? [[String: Any]])?.first?["embedding"] as? [Double]
        #expect(again == vectors[0])
        // A rule's vector for every input.
        let fixed = (s.json(2)["data"] as? [[String: Any]] ?? []).map { $0["embedding"] as? [Double] }
        #expect(fixed == [[0.6, 0.8], [0.6, 0.8]])
        #expect(s.lines[3].hasSuffix(" 400"))
    }

    // MARK: - Scripted rules

    @Test func ruleWithTimesThenFallsThrough() throws {
        let script =
            #"{"rules":[{"contains":"flaky","times":2,"status":503},{"contains":"flaky","reply":"recovered"}]}"#
        let s = try Self.session(
            "", script: script,
            """
            for i in 1 2 3 4; do
                curl -sS -o body.$i -w '%{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("a flaky one"))'
            done
            cat body.4; echo
            """)
        #expect(Array(s.lines.prefix(4)) == ["503", "503", "200", "200"], "\(s.outcome.stderr)")
        #expect(Self.content(Self.choices(s.json(4)).first ?? [:]) as? String == "recovered")
        #expect(s.log.map { $0["rule"] as? Int } == [0, 0, 1, 1])
    }

    @Test func rateLimitCarriesRetryAfter() throws {
        let script = #"{"rules":[{"times":1,"status":429,"headers":{"Retry-After":"1","X-Scripted":"yes"}}]}"#
        let s = try Self.session(
            "", script: script,
            """
            curl -sS -D h1.txt -o b1.json -w '%{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("q"))'
            curl -sS -D h2.txt -o /dev/null -w '%{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("q"))'
            """)
        #expect(s.lines == ["429", "200"], "\(s.outcome.stderr)")
        let h1 = s.file("h1.txt")
        #expect(h1.hasPrefix("HTTP/1.1 429 Too Many Requests"))
        #expect(h1.contains("Retry-After: 1\r\n"))
        #expect(h1.contains("X-Scripted: yes\r\n"))
        #expect(!s.file("h2.txt").contains("Retry-After"))
        let body = try JSONSerialization.jsonObject(with: Data(s.file("b1.json").utf8)) as? [String: Any]
        #expect((body?["error"] as? [String: Any])?["code"] as? String == "rate_limit_exceeded")
    }

    @Test func scriptedReplyVariants() throws {
        let script = #"""
            {"rules":[
              {"contains":"think","reasoning":"let me \#
            see","reasoning_field":"reasoning","content_null":true,"finish_reason":"length"},
              {"contains":"json","reply_json":{"label":"spam","score":0.9}},
              {"contains":"html","status":502,"body":"<html>bad gateway</html>","headers":{"Content-Type":"text/html"}},
              {"_comment":"reasoning beside content","contains":"both","reply":"42","reasoning":"sum"}
            ]}
            """#
        let s = try Self.session(
            "", script: script,
            """
            chat '\(Self.ask("think"))'
            chat '\(Self.ask("json"))'
            curl -sS -D h.txt -w ' %{http_code}' "$URL/chat/completions" -d '\(Self.ask("html"))'; echo
            chat '\(Self.ask("both"))'
            """)
        #expect(s.outcome.status == 0, "\(s.outcome.stderr)")
        let think = Self.choices(s.json(0)).first ?? [:]
        let message = think["message"] as? [String: Any] ?? [:]
        #expect(message["content"] is NSNull)
        #expect(message["reasoning"] as? String == "let me see")
        #expect(think["finish_reason"] as? String == "length")
        #expect(Self.content(Self.choices(s.json(1)).first ?? [:]) as? String == #"{"label":"spam","score":0.9}"#)
        #expect(s.lines[2] == "<html>bad gateway</html> 502")
        #expect(s.file("h.txt").contains("Content-Type: text/html\r\n"))
        let both = (Self.choices(s.json(3)).first?["message"] as? [String: Any]) ?? [:]
        #expect(both["content"] as? String == "42")
        #expect(both["reasoning_content"] as? String == "sum")
    }

    @Test func delayedReplyDoesNotBlockOthers() throws {
        let s = try Self.session(
            "", script: #"{"rules":[{"contains":"slow","delay_ms":1000,"reply":"finally"}]}"#,
            """
            ( chat '\(Self.ask("slow"))' > slow.json; echo slow >> order.txt ) &
            slow=$!
            sleep 0.2
            curl -sS -o fast.json -w '%{time_total}\\n' "$URL/chat/completions" -d '\(Self.ask("fast"))' > fast.time
            echo fast >> order.txt
            wait $slow
            cat order.txt fast.time
            """)
        #expect(Array(s.lines.prefix(2)) == ["fast", "slow"], "\(s.outcome.stderr)")
        #expect((Double(s.lines.last ?? "") ?? 9) < 0.7, "fast request took \(s.lines.last ?? "?") s")
        #expect(s.file("slow.json").contains(#""content":"finally""#))
    }

    @Test func faultsBreakTheExchange() throws {
        let script = #"""
            {"rules":[
              {"contains":"reset-now","fault":"reset"},
              {"contains":"reset-mid","fault":"reset_mid_body"},
              {"contains":"truncate","fault":"truncate"},
              {"contains":"malformed","fault":"malformed"},
              {"contains":"hang","fault":"hang"},
              {"contains":"late-reset","delay_ms":100,"fault":"reset"}
            ]}
            """#
        let s = try Self.session(
            "", script: script,
            """
            try() {
                curl -sS --max-time "${2:-5}" -o "out.$1" -w '%{http_code}' "$URL/chat/completions" -d \
            "{\\"model\\":\\"m1\\",\\"messages\\":[{\\"role\\":\\"user\\",\\"content\\":\\"$1\\"}]}" 2>/dev/null
                echo " $1 $?"
            }
            try hang 1 > hang.txt &
            hang=$!
            try reset-now; try reset-mid; try truncate; try malformed; try late-reset; try healthy
            wait $hang
            cat hang.txt
            """)
        let results = Dictionary(
            uniqueKeysWithValues: s.lines.compactMap { line -> (String, (String, Int))? in
                let f = line.split(separator: " ")
                guard f.count == 3, let rc = Int(f[2]) else { return nil }
                return (String(f[1]), (String(f[0]), rc))
            })
        #expect(results.count == 7, "\(s.outcome.stdoutText)")
        for name in ["reset-now", "reset-mid", "late-reset"] {
            #expect([52, 56].contains(results[name]?.1 ?? 0), "\(name): \(String(describing: results[name]))")
        }
        #expect(results["truncate"]?.1 == 18)
        #expect(results["hang"]?.1 == 28)
        #expect(results["malformed"]?.0 == "200" && results["malformed"]?.1 == 0)
        #expect((try? JSONSerialization.jsonObject(with: Data(s.file("out.malformed").utf8))) == nil)
        #expect(s.file("out.malformed").hasPrefix("{"))
        // Half of a real body arrived before the cut.
        #expect(s.file("out.truncate").hasPrefix(#"{"id":"chatcmpl-"#))
        #expect(results["healthy"]?.0 == "200" && results["healthy"]?.1 == 0)
        // Faulted requests are logged too, with their rule.
        #expect(s.log.count == 7)
    }

    // MARK: - Auth, models, log

    @Test func apiKeyIsRequiredAndNeverWritten() throws {
        let key = "sk-test-\(UUID().uuidString)"
        let s = try Self.session(
            "", env: ["GRA_TESTSERVER_KEY": key],
            """
            curl -sS -w ' %{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("a"))'
            curl -sS -o /dev/null -w '%{http_code}\\n' -H 'Authorization: Bearer wrong' "$URL/chat/completions" -d \
            '\(Self.ask("b"))'
            curl -sS -o /dev/null -w '%{http_code}\\n' -H "Authorization: Bearer $GRA_TESTSERVER_KEY" \
            "$URL/chat/completions" -d '\(Self.ask("c"))'
            curl -sS -o /dev/null -w '%{http_code}\\n' -H "Authorization: Bearer $GRA_TESTSERVER_KEY" "$URL/models"
            curl -sS -o /dev/null -w '%{http_code}\\n' "${URL%/v1}/health"
            """)
        #expect(
            s.lines == [
                #"""
                {"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","param":null,\#
                "code":"invalid_api_key"}} 401
                """#,
                "401", "200", "200", "200"
            ], "\(s.outcome.stderr)")
        #expect(s.log.map { $0["auth"] as? Bool } == [false, false, true, true, false])
        #expect(!s.rawLog.contains(key))
        #expect(!s.serverErr.contains(key))
        #expect(!s.rawLog.contains("wrong"))
    }

    @Test func unknownModelGets404WithModelsList() throws {
        let s = try Self.session(
            "--models m1,m2",
            """
            curl -sS -w ' %{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("a", model: "gpt-nope"))'
            curl -sS -o /dev/null -w '%{http_code}\\n' "$URL/chat/completions" -d '\(Self.ask("a", model: "m2"))'
            curl -sS -o /dev/null -w '%{http_code}\\n' "$URL/embeddings" -d '{"model":"gpt-nope","input":"a"}'
            """)
        #expect(
            s.lines == [
                #"""
                {"error":{"message":"The model `gpt-nope` does not \#
                exist.","type":"NotFoundError","param":null,"code":404}} 404
                """#,
                "200", "404"
            ], "\(s.outcome.stderr)")
    }

    @Test func logRecordsEveryRequest() throws {
        let s = try Self.session(
            "", script: #"{"rules":[{"path":"/v1/models","status":500},{"contains":"special","reply":"s"}]}"#,
            """
            chat '\(Self.ask("plain"))' > /dev/null
            chat '\(Self.ask("special"))' > /dev/null
            curl -sS -o /dev/null "$URL/models"
            curl -sS -o /dev/null -H 'Content-Type: text/plain' "$URL/chat/completions" -d 'not json at all'
            curl -sS -o /dev/null -H 'Authorization: Bearer sk-secret-value' "$URL/chat/completions" -d \
            '\(Self.ask("plain"))'
            """)
        #expect(s.outcome.status == 0, "\(s.outcome.stderr)")
        let log = s.log
        #expect(log.map { $0["seq"] as? Int } == [1, 2, 3, 4, 5])
        #expect(log.map { $0["rule"] as? Int } == [nil, 1, 0, nil, nil])
        #expect(log.map { $0["rule"] is NSNull } == [true, false, false, true, true])
        #expect(log.map { $0["method"] as? String } == ["POST", "POST", "GET", "POST", "POST"])
        #expect(
            log.map { $0["path"] as? String } == [
                "/v1/chat/completions", "/v1/chat/completions", "/v1/models", "/v1/chat/completions",
                "/v1/chat/completions"
            ])
        #expect(log.map { $0["model"] as? String } == ["m1", "m1", nil, nil, "m1"])
        #expect(log.map { $0["auth"] as? Bool } == [false, false, false, false, true])
        #expect(log.allSatisfy { ($0["time"] as? Double ?? 0) > 1_600_000_000 })
        let body = log.first?["body"] as? [String: Any]
        #expect((body?["messages"] as? [[String: Any]])?.last?["content"] as? String == "plain")
        #expect(log[2]["body"] is NSNull)
        #expect(log[3]["body"] as? String == "not json at all")
        #expect(!s.rawLog.contains("sk-secret-value"))
    }

    // MARK: - HTTP details and process behaviour

    @Test func httpFramingEdges() throws {
        let s = try Self.session(
            "",
            """
            # Keep-alive: the second request reuses the first connection.
            curl -sS -o /dev/null -o /dev/null -w '%{num_connects}\\n' "$URL/models" "$URL/models"
            # A chunked upload has no length: 411.
            curl -sS -o /dev/null -w '%{http_code}\\n' -H 'Transfer-Encoding: chunked' "$URL/chat/completions" -d \
            '\(Self.ask("a"))'
            # Expect: 100-continue is honoured.
            curl -sS -v -o /dev/null -w '%{http_code}\\n' -H 'Expect: 100-continue' "$URL/chat/completions" -d \
            '\(Self.ask("a"))' 2> expect.txt
            grep -c '100 Continue' expect.txt
            # A request line that is not HTTP: 400.
            curl -sS -o /dev/null -w '%{http_code}\\n' -X 'GE T' "$URL/models"
            """)
        #expect(s.lines == ["1", "0", "411", "200", "1", "400"], "\(s.outcome.stdoutText) \(s.outcome.stderr)")
    }

    /// Raw bytes the curl tool will not send: pipelining, bad headers, an oversized body.
    @Test func rawClientPipeliningAndBadInput() throws {
        let dir = ToolRunner.scratch()
        // The server outlives this script: the test kills it, and a watchdog does if the test
        // dies first. (Not `timeout`: it would inherit the test thread's blocked signals.)
        let start = try ToolRunner.sh(
            """
            unset GRA_TESTSERVER_KEY
            gra-testserver --port 0 --port-file url.txt --log log.ndjson 2> server.err > /dev/null &
            server=$!
            ( sleep 30; kill $server ) > /dev/null 2>&1 &
            echo "$server $!"
            i=0; while [ ! -s url.txt ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            cat url.txt
            """, stdin: Data(), in: dir)
        let pids = start.stdoutLines.first ?? ""
        defer { _ = try? ToolRunner.sh("kill \(pids) 2>/dev/null", stdin: Data(), in: dir) }
        let url = start.stdoutLines.last ?? ""
        let port = try #require(Int(url.split(separator: ":").last?.split(separator: "/").first ?? ""), "url: \(url)")

        let pipelined = Self.exchange(
            port: port,
            """
            GET /health HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/chat/completions HTTP/1.1\r\nContent-Length: \
            \(Self.ask("p").utf8.count)\r\n\r\n\(Self.ask("p"))GET /health HTTP/1.0\r\n\r\n
            """
        )
        #expect(pipelined.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "\(pipelined)")
        #expect(pipelined.contains("echo: p"))
        #expect(pipelined.hasSuffix("ok"), "HTTP/1.0 without keep-alive closes after its response")

        let badHeader = Self.exchange(port: port, "GET /health HTTP/1.1\r\nno colon here\r\n\r\n")
        #expect(badHeader.hasPrefix("HTTP/1.1 400 "), "\(badHeader)")
        let garbage = Self.exchange(port: port, "\u{1}\u{2}garbage\r\n\r\n")
        #expect(garbage.hasPrefix("HTTP/1.1 400 "), "\(garbage)")
        let huge = Self.exchange(port: port, "POST /v1/embeddings HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n")
        #expect(huge.hasPrefix("HTTP/1.1 413 "), "\(huge)")
        // Still serving.
        #expect(Self.exchange(port: port, "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n").hasSuffix("\r\n\r\nok"))
    }

    /// Sends `request` on a fresh connection and reads until the server closes (or 3 s pass).
    static func exchange(port: Int, _ request: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "<socket failed>" }
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = in_port_t(UInt16(port)).bigEndian
        sa.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard rc == 0 else { return "<connect failed>" }
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func startupStopAndRefusals() throws {
        let s = try Self.session(
            "",
            """
            curl -sS -o /dev/null "${URL%/v1}/health"
            kill $pid; wait $pid; echo "exit $?"
            case "$URL" in http://127.0.0.1:*/v1) echo "url ok";; *) echo "url bad: $URL";; esac
            """)
        #expect(s.lines == ["exit 0", "url ok"], "\(s.outcome.stderr)")
        #expect(s.serverErr.contains("gra-testserver: listening on http://127.0.0.1:"))
        #expect(s.serverErr.contains("(test double with scripted replies — not a model)"))

        let refusals = try ToolRunner.sh(
            """
            gra-testserver --host 0.0.0.0 --port 0 2>host.err; echo "host $?"
            echo '{"rules":[{"delay":5}]}' > bad.json
            gra-testserver --port 0 --script bad.json 2>script.err; echo "script $?"
            gra-testserver --help | grep -c 'TEST DOUBLE'
            cat host.err script.err
            """)
        #expect(Array(refusals.stdoutLines.prefix(3)) == ["host 64", "script 65", "1"], "\(refusals.stdoutText)")
        #expect(refusals.stdoutText.contains("not a loopback address"))
        #expect(refusals.stdoutText.contains("rule 0: unknown key 'delay'"))
    }
}
