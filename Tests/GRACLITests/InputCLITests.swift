import Foundation
import Testing

/// JSON array documents of 1–50 MB, and real public datasets, through the built tools: read
/// from a file, from a pipe and from a slow pipe, each must give exactly the records that the
/// same data as NDJSON gives (the arrays are written by Python's json module, not by gra).
@Suite("Input: JSON arrays from files and pipes give the NDJSON records", .serialized)
struct InputCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// A shell function `slowcat FILE`: writes FILE in pieces of 1 byte to 64 KiB with short
    /// pauses, so reads see every kind of partial chunk.
    static let slowcat = """
        slowcat() { python3 -c '
        import random, sys, time
        d = open(sys.argv[1], "rb").read(); r = random.Random(4); i = 0; o = sys.stdout.buffer
        while i < len(d):
            n = r.choice((1, 7, 512, 4096, 65536, r.randint(1, 200000))); o.write(d[i:i + n]); o.flush(); i += n
            if r.random() < 0.05: time.sleep(0.001)
        ' "$1"; }
        """

    @Test(arguments: [(1.0, "compact", true), (3.0, "crlf", true), (12.0, "indent", false), (50.0, "ascii", false)])
    func largeArrayGivesTheNDJSONRecords(megabytes: Double, layout: String, slow: Bool) throws {
        let script = """
            set -e
            \(Self.slowcat)
            n=$(python3 '\(Self.repo.path)/Tests/input/make_arrays.py' \(megabytes) \(layout) 7 big.json big.ndjson)
            size=$(wc -c < big.json)
            gra-format -q < big.ndjson > want.out
            gra-format -q big.json > file.out
            cat big.json | gra-format -q > pipe.out
            \(slow ? "slowcat big.json | gra-format -q > slow.out" : "cp pipe.out slow.out")
            for f in file pipe slow; do cmp want.out $f.out || { echo "$f differs"; exit 1; }; done
            echo "$n $(wc -l < want.out) $size"
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        let words = r.stdoutText.split(separator: " ").compactMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(words.count == 3 && words[0] > 0 && words[0] == words[1], "records made vs written: \(r.stdoutText)")
        if words.count == 3 { #expect(Double(words[2]) >= megabytes * 1_000_000) }
    }

    /// gra-dedup shares the reader: the same kept records and the same drops, from an array
    /// file, a pipe and a slow pipe as from NDJSON (compared after one gra-format pass, since
    /// gra-dedup writes NDJSON lines as read but array elements re-serialized).
    @Test func dedupReadsLargeArraysLikeNDJSON() throws {
        let script = """
            set -e
            \(Self.slowcat)
            python3 '\(Self.repo.path)/Tests/input/make_arrays.py' 6 indent 3 big.json big.ndjson > /dev/null
            # Duplicates that cross the array's elements: the first 300 records again at the end.
            python3 -c 'import json; r = json.load(open("big.json")); json.dump(r + r[:300], open("dup.json", "w"), \
            indent=2)'
            python3 -c 'import json; [print(json.dumps(x)) for x in json.load(open("dup.json"))]' > dup.ndjson
            gra-dedup -q --rejects want.rej < dup.ndjson | gra-format -q > want.out
            gra-dedup -q --rejects file.rej dup.json | gra-format -q > file.out
            cat dup.json | gra-dedup -q --rejects pipe.rej | gra-format -q > pipe.out
            slowcat dup.json | gra-dedup -q --rejects slow.rej | gra-format -q > slow.out
            for f in file pipe slow; do
                cmp want.out $f.out || { echo "$f differs"; exit 1; }
                test $(wc -l < $f.rej) -eq 300 || { echo "$f.rej: $(wc -l < $f.rej) drops"; exit 1; }
            done
            wc -l < want.out; wc -l < want.rej
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        let counts = r.stdoutLines.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        #expect(counts.count == 2 && counts[0] > 1000 && counts[1] == 300, "\(r.stdoutText)")
    }

    /// The file LLaMA-Factory and most Alpaca sets ship as: a real public JSON array over
    /// 2 MiB. gra-format writes it as an Alpaca array and reads its own output back to the same
    /// records (this crashed in malloc once the array passed 2 MiB).
    @Test func ownAlpacaArrayOutputReadsBack() throws {
        let codegen = Self.repo.appendingPathComponent("Tests/data/real/gpteacher/codegen-instruct.json").path
        let roleplay = Self.repo.appendingPathComponent(
            "Tests/data/real/gpteacher/roleplay-simple-deduped-roleplay-instruct.json"
        ).path
        let script = """
            set -e
            gra-format -q --from gra --to alpaca '\(codegen)' '\(roleplay)' > want.ndjson
            gra-format -q --from gra --to alpaca --array '\(codegen)' '\(roleplay)' > out.json
            test $(wc -c < out.json) -gt 2097391
            gra-format -q --to alpaca out.json > back.ndjson
            cat out.json | gra-format -q --to alpaca > back-pipe.ndjson
            cmp want.ndjson back.ndjson
            cmp want.ndjson back-pipe.ndjson
            wc -l < want.ndjson
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        #expect(Int(r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 6000, "\(r.stdoutText)")
    }

    /// Every real JSON array file in Tests/data/real, from a file, a pipe and a slow pipe,
    /// gives exactly what its NDJSON form (written by Python) gives, rejects included.
    @Test(arguments: [
        "llama-factory/alpaca_en_demo.json", "llama-factory/alpaca_zh_demo.json", "llama-factory/identity.json",
        "llama-factory/glaive_toolcall_en_demo.json", "llama-factory/glaive_toolcall_zh_demo.json",
        "llama-factory/dpo_en_demo.json", "llama-factory/kto_en_demo.json",
        "gpteacher/roleplay-simple-deduped-roleplay-instruct.json", "gpteacher/codegen-instruct.json"
    ])
    func realArrayFileGivesItsNDJSONRecords(_ name: String) throws {
        let path = Self.repo.appendingPathComponent("Tests/data/real/" + name).path
        let script = """
            set -e
            \(Self.slowcat)
            python3 -c 'import json, sys; [print(json.dumps(x, ensure_ascii=False)) for x in \
            json.load(open(sys.argv[1]))]' '\(path)' > data.ndjson
            gra-format -q --rejects want.rej < data.ndjson > want.out || test $? -eq 0
            gra-format -q --rejects file.rej '\(path)' > file.out
            cat '\(path)' | gra-format -q --rejects pipe.rej > pipe.out
            slowcat '\(path)' | gra-format -q --rejects slow.rej > slow.out
            # The rejects name the place: "line N" from NDJSON, "line N (array element K)" from the array.
            for f in want file pipe slow; do sed -E 's/"where":"[^"]*",//' $f.rej > $f.rej2; done
            for f in file pipe slow; do cmp want.out $f.out && cmp want.rej2 $f.rej2 || { echo "$f differs"; exit 1; \
            }; done
            echo $(wc -l < data.ndjson) $(wc -l < want.out) $(wc -l < want.rej)
            """
        let r = try ToolRunner.sh(script)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        let n = r.stdoutText.split(separator: " ").compactMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(n.count == 3 && n[0] > 0 && n[0] == n[1] + n[2], "every record written or rejected: \(r.stdoutText)")
    }

    /// The fuzz targets' seeds and every input a fuzzer once failed on (Tests/fuzz/crashers),
    /// replayed through the same checks (gra-fuzz's plain build).
    @Test(arguments: ["json", "lines", "array"])
    func fuzzSeedsAndCrashersPass(_ target: String) throws {
        let fuzz = Self.repo.appendingPathComponent("Tests/fuzz").path
        let r = try ToolRunner.sh(
            """
            set -e
            dirs='\(fuzz)/seeds/\(target)'
            test -d '\(fuzz)/crashers/\(target)' && dirs="$dirs \(fuzz)/crashers/\(target)"
            gra-fuzz \(target) $dirs
            """)
        #expect(r.status == 0, "\(r.stdoutText) \(r.stderr)")
        #expect(r.stdoutText.contains(" 0 failed"), "\(r.stdoutText)")
    }
}
