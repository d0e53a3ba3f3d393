import Foundation
import GRAKit
import Testing

/// What a user meets at the edges of a run (issue 13), through the built binaries: a server
/// that goes away mid-run, the live status line on a real terminal, repeated messages, a
/// server that moved, input that is not NDJSON, and the `gra` front door.
@Suite("Trust at the edges")
struct EdgeCLITests {
    static let prelude = MapCLITests.prelude

    func setUp(records n: Int, script: String = #"{"rules":[]}"#) throws -> URL {
        let dir = ToolRunner.scratch()
        try Data("Say {{instruction}}".utf8).write(to: dir.appendingPathComponent("p.txt"))
        try Data(script.utf8).write(to: dir.appendingPathComponent("script.json"))
        let records = (0..<n).map { #"{"id":"r\#($0)","instruction":"question \#($0)"}"# }
        try Data((records.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("in.ndjson"))
        return dir
    }

    func text(_ dir: URL, _ name: String) -> String {
        (try? String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)) ?? ""
    }

    /// The server dies mid-run: once every endpoint has failed --max-connect-failures
    /// connections in a row (for GRA_BREAKER_SECONDS), the rest fail at once into the errors
    /// file and the run ends with 69, every record accounted for exactly once.
    @Test func circuitBreakerStopsAModelWhoseServerWentAway() throws {
        let dir = try setUp(records: 400, script: #"{"rules":[{"path":"/v1/chat/completions","delay_ms":20}]}"#)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                ( sleep 0.8; kill $SERVER_PID ) &
                start=$(date +%s)
                gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-in-flight 4 --max-connect-failures 3 \
                    --errors err.ndjson in.ndjson > out.ndjson 2> stderr.txt
                echo "status $?"
                echo "seconds $(( $(date +%s) - start ))"
                """, in: dir, env: ["GRA_BREAKER_SECONDS": "0.3", "GRA_RETRY_BASE_DELAY": "0.02"])
        #expect(r.stdoutLines.first == "status 69", "\(r.stdoutText) \(text(dir, "stderr.txt"))")
        let seconds = Int(r.stdoutLines.last?.split(separator: " ").last ?? "") ?? 99
        #expect(seconds <= 8)
        let out = try jsonLines(Data(contentsOf: dir.appendingPathComponent("out.ndjson")))
        let failed = try jsonLines(Data(contentsOf: dir.appendingPathComponent("err.ndjson")))
        #expect(!out.isEmpty, "the server answered for 0.8 s")
        #expect(failed.count > 100, "most records came after the server died")
        let ids =
            out.compactMap { $0["id"] as? String }
            + failed.compactMap { ($0["record"] as? [String: Any])?["id"] as? String }
        #expect(ids.count == 400 && Set(ids).count == 400)
        #expect(failed.contains { ($0["reason"] as? String)?.contains("is unreachable") == true })
        let stderr = text(dir, "stderr.txt")
        #expect(stderr.components(separatedBy: "is unreachable").count == 2, "one message: \(stderr)")
        #expect(stderr.split(separator: "\n").count <= 10, "\(stderr)")
    }

    /// On a real terminal (script(1)) the status line is redrawn at least twice a second while
    /// replies stream in steadily, with percent and ETA; --no-progress turns it off there, and
    /// --progress turns it on for a file.
    @Test func liveStatusLineOnATerminal() throws {
        let dir = try setUp(records: 300, script: #"{"rules":[{"path":"/v1/chat/completions","delay_ms":30}]}"#)
        let map = "gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-in-flight 4"
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                command -v script > /dev/null || { echo "no script(1)"; exit 0; }
                start=$(date +%s.%N)
                script -qfec "\(map) in.ndjson > out1.ndjson" tty1.txt > /dev/null
                echo "seconds $(awk "BEGIN { print $(date +%s.%N) - $start }")"
                script -qfec "\(map) --no-progress in.ndjson > out2.ndjson" tty2.txt > /dev/null
                \(map) --progress in.ndjson > out3.ndjson 2> file3.txt
                """, in: dir)
        #expect(r.stdoutLines.first?.hasPrefix("seconds") == true, "\(r.stdoutText) \(r.stderr)")
        let seconds = Double(r.stdoutLines.first?.split(separator: " ").last ?? "") ?? 0
        let redraw = "\r\u{1B}[K"
        let tty = text(dir, "tty1.txt")
        let redraws = tty.components(separatedBy: redraw).count - 1
        // Every 0.4 s at most; at least twice a second, less the start-up and the end.
        #expect(seconds > 1.5, "the run was too short to show anything: \(seconds) s")
        #expect(Double(redraws) >= (seconds - 1) * 2, "\(redraws) redraws in \(seconds) s: \(tty.debugDescription)")
        #expect(tty.contains("%, ETA "), "\(tty.debugDescription)")
        #expect(tty.contains("300/300 done, 300 written"))
        #expect(!text(dir, "tty2.txt").contains(redraw), "--no-progress drew a status line")
        #expect(text(dir, "file3.txt").contains(redraw), "--progress drew no status line into a file")
        #expect(try jsonLines(Data(contentsOf: dir.appendingPathComponent("out1.ndjson"))).count == 300)
    }

    /// A server that takes at most K = 8 requests at once and answers the rest 503 at once (as
    /// Ollama or SGLang with a full queue do), against --max-in-flight 64: the adaptive window
    /// comes down near K, every record gets through, and few requests are refused after the
    /// first round trip. With --fixed-concurrency the same run is refused many times more often.
    @Test func theWindowAdaptsToAnOverloadedServer() throws {
        let dir = try setUp(records: 600, script: #"{"rules":[{"path":"/v1/chat/completions","delay_ms":25}]}"#)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --max-concurrent 8
                M="gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-in-flight 64 --max-attempts 8"
                $M --stats adaptive.json --errors err1.ndjson in.ndjson > adaptive.ndjson 2> adaptive.err
                echo "adaptive $?"
                $M --fixed-concurrency --stats fixed.json --errors err2.ndjson in.ndjson > fixed.ndjson 2> fixed.err
                echo "fixed $?"
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.02"])
        #expect(r.stdoutLines.first == "adaptive 0", "\(r.stdoutText) \(text(dir, "adaptive.err"))")
        #expect(try jsonLines(Data(contentsOf: dir.appendingPathComponent("adaptive.ndjson"))).count == 600)
        func stats(_ name: String) throws -> (retries: Int, window: [String: Any]) {
            let o =
                try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(name)))
                as? [String: Any]
            let m1 = (o?["models"] as? [String: Any])?["m1"] as? [String: Any]
            let endpoint = (o?["endpoints"] as? [String: Any])?.values.first as? [String: Any]
            return (m1?["retries"] as? Int ?? -1, endpoint ?? [:])
        }
        let adaptive = try stats("adaptive.json"), fixed = try stats("fixed.json")
        // Converged near K: cut at least once, down to K or below, ending between K/2 and 2K.
        let window = adaptive.window
        #expect(
            (window["window_cuts"] as? Int ?? 0) >= 1 && (window["smallest_window"] as? Int ?? 99) <= 8, "\(window)")
        #expect((4...16).contains(window["window"] as? Int ?? 0), "\(window)")
        #expect(window["max_window"] as? Int == 64)
        // Refused: the first round trip's burst (64 - 8), then a request or two per cut. Measured
        // here: 105 adaptive, 883 fixed.
        #expect(adaptive.retries >= 0 && adaptive.retries < 160, "adaptive: \(adaptive.retries) refused of 600")
        #expect(fixed.retries > 3 * max(adaptive.retries, 10), "fixed: \(fixed.retries), adaptive: \(adaptive.retries)")
        #expect(fixed.window["window_cuts"] as? Int == 0 && fixed.window["window"] as? Int == 64)
    }

    /// A hosted API's rate limit (here 20 requests in any second, more get 429): with --rpm at
    /// the limit the run sends at that pace with next to no 429 and takes as long as the limit
    /// says; without it (and a fixed window, so only the limit acts) it meets a storm of them.
    @Test func rpmKeepsARunUnderARateLimit() throws {
        let dir = try setUp(records: 60)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json --rate-limit 20/1
                M="gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-in-flight 64 --max-attempts 10"
                start=$(date +%s%N)
                $M --rpm 1200 --stats rpm.json in.ndjson > rpm.ndjson 2> rpm.err; echo "rpm $?"
                echo "ms $(( ($(date +%s%N) - start) / 1000000 ))"
                $M --fixed-concurrency --stats storm.json in.ndjson > storm.ndjson 2> storm.err; echo "storm $?"
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.05"])
        #expect(r.stdoutLines.first == "rpm 0", "\(r.stdoutText) \(text(dir, "rpm.err"))")
        func retries(_ name: String) throws -> Int {
            let o = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(name)))
            return ((o as? [String: Any])?["models"] as? [String: Any]).flatMap { $0["m1"] as? [String: Any] }?[
                "retries"] as? Int ?? -1
        }
        let paced = try retries("rpm.json"), storm = try retries("storm.json")
        #expect(paced >= 0 && paced <= 2, "with --rpm: \(paced) requests refused")
        #expect(storm >= 30, "without: \(storm)")
        // 60 requests at 20 a second: the last one goes out after about 2.95 s.
        let ms = Int(r.stdoutLines.dropFirst().first?.split(separator: " ").last ?? "") ?? 0
        #expect(ms >= 2800 && ms < 9000, "\(ms) ms")
        #expect(try jsonLines(Data(contentsOf: dir.appendingPathComponent("rpm.ndjson"))).count == 60)
    }

    /// x-ratelimit-remaining-requests: 0 with a reset of 1 s: the next request waits for the reset.
    @Test func rateLimitHeadersPauseUntilTheReset() throws {
        let script = #"""
            {"rules":[{"path":"/v1/chat/completions","times":1,"reply":"first",\#
            "headers":{"x-ratelimit-remaining-requests":"0","x-ratelimit-reset-requests":"1s"}}]}
            """#
        let dir = try setUp(records: 3, script: script)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-in-flight 1 in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let times = try jsonLines(Data(contentsOf: dir.appendingPathComponent("log.ndjson")))
            .filter { $0["path"] as? String == "/v1/chat/completions" }.compactMap { $0["time"] as? Double }
        #expect(times.count == 3)
        if times.count == 3 {
            #expect(times[1] - times[0] >= 0.95, "\(times)")
            #expect(times[2] - times[1] < 0.5, "\(times)")
        }
    }

    /// The same failure for every record is said once, then counted.
    @Test func repeatedMessagesAreFolded() throws {
        let dir = try setUp(records: 20, script: #"{"rules":[{"path":"/v1/chat/completions","status":503}]}"#)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                gra-map --prompt p.txt --into x --model m1@$URL --no-cache --max-attempts 3 --errors err.ndjson \
                in.ndjson > out.ndjson
                echo "status $?"
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.01"])
        #expect(r.stdoutLines == ["status 75"], "\(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        // 20 records × 2 retries: the first said, 39 folded.
        #expect(lines.filter { $0.contains("HTTP 503") }.count == 2, "\(r.stderr)")
        #expect(r.stderr.contains("… and 39 more like this: m1: HTTP 503"), "\(r.stderr)")
    }

    /// Replies are cached by model name and request: a server that moved (another port, or
    /// localhost for 127.0.0.1) is not asked again; --cache-namespace (or a config's
    /// cache_namespace) keeps other weights under the same name apart.
    @Test func theCacheSurvivesAMovedServer() throws {
        let dir = try setUp(records: 10)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                A=$URL
                mv log.ndjson log-a.ndjson
                gra-testserver --port 0 --port-file url-b.txt --log log-b.ndjson 2> server-b.err &
                B_PID=$!
                i=0; while [ ! -s url-b.txt ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
                B=$(cat url-b.txt)
                M="gra-map --prompt p.txt --into x --cache cache -q"
                $M --model m1@$A in.ndjson > first.ndjson
                $M --model m1@$B in.ndjson > moved.ndjson
                $M --model m1@$(echo $A | sed 's/127.0.0.1/localhost/') in.ndjson > localhost.ndjson
                $M --model m1@$B --cache-namespace finetune in.ndjson > namespaced.ndjson
                echo '{"models":[{"name":"m1","base_url":"'$B'","cache_namespace":"other-weights"}]}' > gra.json
                $M --config gra.json in.ndjson > configured.ndjson
                kill $B_PID
                echo "a $(grep -c chat/completions log-a.ndjson) b $(grep -c chat/completions log-b.ndjson)"
                cmp -s first.ndjson moved.ndjson && cmp -s first.ndjson localhost.ndjson && echo same
                """, in: dir)
        // A: the first run's 10. B: 0 for the moved run, 10 namespaced, 10 configured.
        #expect(r.stdoutLines == ["a 10 b 20", "same"], "\(r.stdoutText) \(r.stderr)")
    }

    /// Input that is not NDJSON or a JSON array says what it looks like and what to do.
    @Test(arguments: ["gra-format", "gra-dedup", "gra-map --prompt p.txt --into x --model m1@http://127.0.0.1:9/v1"])
    func inputThatIsSomethingElseSaysWhat(_ command: String) throws {
        let dir = try setUp(records: 3)
        let r = try ToolRunner.sh(
            """
            gzip -c in.ndjson > in.ndjson.gz
            \(command) in.ndjson.gz; echo "gzip $?"
            printf '{\\n  "instruction": "a",\\n  "output": "b"\\n}\\n' > pretty.json
            \(command) < pretty.json; echo "pretty $?"
            """, in: dir)
        #expect(r.stdoutLines == ["gzip 65", "pretty 65"], "\(r.stderr)")
        #expect(
            r.stderr.contains("in.ndjson.gz looks gzip-compressed: decompress it first, e.g. zcat in.ndjson.gz |"),
            "\(r.stderr)")
        #expect(
            r.stderr.contains("standard input looks like one JSON object printed over several lines"), "\(r.stderr)")
    }

    /// Skipped bad lines are kept in the errors file (the default one when none is named).
    @Test func skippedBadInputIsKept() throws {
        let dir = try setUp(records: 2)
        let r = try ToolRunner.sh(
            Self.prelude + """
                start_server --script script.json
                { head -1 in.ndjson; echo 'not json'; tail -n +2 in.ndjson; } > bad.ndjson
                gra-map --prompt p.txt --into x --model m1@$URL --no-cache --skip-bad-input bad.ndjson > out.ndjson
                echo "status $?"
                """, in: dir)
        #expect(r.stdoutLines == ["status 0"], "\(r.stderr)")
        let kept = try jsonLines(Data(contentsOf: dir.appendingPathComponent("gra-map.errors.ndjson")))
        #expect(kept.count == 1)
        #expect(kept.first?["where"] as? String == "bad.ndjson:2")
        #expect(r.stderr.contains("1 failed record(s) written to ./gra-map.errors.ndjson"), "\(r.stderr)")
    }

    /// `gra --list` prints the stages one per line; a stage file that cannot be run is named.
    @Test func graListsItsStages() throws {
        let r = try ToolRunner.sh(
            """
            gra --list
            gra --version
            mkdir extra && printf '#!/bin/sh\\necho hi\\n' > extra/gra-mine && chmod 644 extra/gra-mine
            PATH="$PWD/extra:$PATH" gra mine; echo "status $?"
            chmod 755 extra/gra-mine
            PATH="$PWD/extra:$PATH" gra mine; echo "status $?"
            PATH="$PWD/extra:$PATH" gra --list | grep -x mine
            """)
        for stage in ["adjudicate", "dedup", "format", "generate", "map", "review"] {
            #expect(r.stdoutLines.contains(stage), "\(r.stdoutText)")
        }
        #expect(r.stdoutLines.contains(GRAVersion.string))
        #expect(r.stdoutLines.suffix(4) == ["status 126", "hi", "status 0", "mine"], "\(r.stdoutText)")
        #expect(r.stderr.contains("gra-mine exists but is not executable"), "\(r.stderr)")
    }
}
