import Foundation
import Testing

/// A night's run in miniature: gra-review | gra-adjudicate over 2,000 samples against a server
/// that fails about 40 % of the requests in every way gra-testserver knows (429 with
/// Retry-After, 500, 503, resets before and in the middle of the body, bodies cut short, bodies
/// that are not JSON, slow replies), with an API key the server demands.
@Suite("Soak: faults, every record accounted for")
struct SoakTests {
    static let records = 2000

    /// Every sample ends exactly once: accepted on stdout (in input order), rejected in the
    /// rejects file, or failed in one of the errors files; the key is in no file.
    @Test func everyRecordEndsExactlyOnceUnderFaults() throws {
        let key = "sk-soak-0123456789abcdefghij"
        let r1 = GRAStagesCLITests.round1, r2 = GRAStagesCLITests.round2
        // The first matching rule acts; each "every" counts the requests that reach it.
        let faults = [
            #"{"path":"/v1/chat/completions","every":10,"status":429,"headers":{"Retry-After":"0"}}"#,
            #"{"path":"/v1/chat/completions","every":10,"status":500}"#,
            #"{"path":"/v1/chat/completions","every":10,"status":503}"#,
            #"{"path":"/v1/chat/completions","every":15,"fault":"reset_mid_body"}"#,
            #"{"path":"/v1/chat/completions","every":15,"fault":"malformed"}"#,
            #"{"path":"/v1/chat/completions","every":20,"fault":"truncate"}"#,
            #"{"path":"/v1/chat/completions","every":20,"fault":"reset"}"#,
            #"{"path":"/v1/chat/completions","every":25,"delay_ms":150,"reply":"slow and not JSON"}"#
        ]
        let replies = [
            // Samples marked BAD fail round 1; DISPUTE ones split round 2 (9, 9, 5), and the area
            // chair rejects those whose number ends in 0 and accepts the others.
            GRAStagesCLITests.score(["BAD", r1], "2"),
            GRAStagesCLITests.score(["DISPUTE", r2], "5", times: 0).replacingOccurrences(
                of: #","times":0"#, with: #","every":3"#),
            #"""
            {"contains":["0 DISPUTE","The reviewers disagreed"],"reply_json":{"decision":"reject","score":3,\#
            "rationale":"wrong"}}
            """#,
            #"""
            {"contains":"The reviewers disagreed","reply_json":{"decision":"accept","score":8,"rationale":"fine"}}
            """#,
            GRAStagesCLITests.score([r1], "8"), GRAStagesCLITests.score([r2], "9")
        ]
        let samples = (0..<Self.records).map { i -> String in
            let mark = i % 7 == 0 ? "BAD" : i % 5 == 0 ? "DISPUTE" : "OK"
            return GRAStagesCLITests.sample("s\(i)", "\(i) \(mark) sample")
        }
        let dir = try GRAStagesCLITests().setUp(rules: faults + replies, records: samples)
        let r = try ToolRunner.sh(
            MapCLITests.prelude + """
                GRA_TESTSERVER_KEY=\(key) start_server --script script.json --models m1,m2,m3,m4,m5
                export OPENAI_API_KEY=\(key)
                P="\(GRAStagesCLITests.pool(5)) --cache cache --max-attempts 8 --max-in-flight 32"
                gra-review $P --errors review.errors.ndjson --stats review.stats.json in.ndjson \
                | gra-adjudicate $P --rejects rejects.ndjson --errors adjudicate.errors.ndjson \
                --stats adjudicate.stats.json > out.ndjson 2> adjudicate.err
                echo "status $?"
                grep -rl -e "\(key)" -e "\(String(key.prefix(12)))" . | grep -v '^./.std' || echo "key nowhere"
                """, in: dir, env: ["GRA_RETRY_BASE_DELAY": "0.005"])
        #expect(
            r.stdoutLines.count == 2 && ["status 0", "status 75"].contains(r.stdoutLines.first ?? ""), "\(r.stderr)")
        #expect(r.stdoutLines.last == "key nowhere", "\(r.stdoutText)")
        func ids(_ name: String) throws -> [String] {
            let url = dir.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return [] }
            return try jsonLines(Data(contentsOf: url)).compactMap {
                ($0["id"] as? String) ?? (($0["record"] as? [String: Any])?["id"] as? String)
            }
        }
        let accepted = try ids("out.ndjson"), rejected = try ids("rejects.ndjson")
        let failed = try ids("review.errors.ndjson") + ids("adjudicate.errors.ndjson")
        let all = accepted + rejected + failed
        #expect(
            all.count == Self.records, "accepted \(accepted.count), rejected \(rejected.count), failed \(failed.count)")
        #expect(Set(all).count == Self.records)
        // Input order kept on stdout.
        let position = Dictionary(uniqueKeysWithValues: (0..<Self.records).map { ("s\($0)", $0) })
        let order = accepted.compactMap { position[$0] }
        #expect(order == order.sorted())
        // The faults really happened, and the rules decided: BAD rejected, the disputes split.
        let stats =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("review.stats.json"))) as? [String: Any]
        let models = (stats?["models"] as? [String: [String: Any]]) ?? [:]
        let requests = models.values.reduce(0) { $0 + ($1["requests"] as? Int ?? 0) }
        let retries = models.values.reduce(0) { $0 + ($1["retries"] as? Int ?? 0) }
        #expect(Double(retries) >= 0.3 * Double(requests - retries), "\(retries) retries of \(requests) requests")
        let bad = (0..<Self.records).filter { $0 % 7 == 0 }.map { "s\($0)" }
        #expect(Set(bad).isSubset(of: Set(rejected + failed)))
        #expect(!accepted.isEmpty && accepted.allSatisfy { !bad.contains($0) })
    }
}
