"""Tool-call conversations through gra-format, compared with their source.

usage: roundtrip_tools.py SOURCE REJECTS OUTPUT...
       roundtrip_tools.py --load FILE

SOURCE is a ShareGPT JSON array with function_call/observation turns and a `tools` string
(LLaMA-Factory's glaive demos). Each OUTPUT is gra-format's ShareGPT array of it (directly,
or after a trip through another form). Every source record must come out, in order, either
in OUTPUT or, by element number, in REJECTS; every output record must equal its source: the
same turns, the same texts, and the same function calls and tool definitions as JSON values
(gra writes JSON compactly, the source with spaces). The outputs are made with --no-normalize,
so every text must be the same byte for byte.

--load FILE: Hugging Face datasets loads the NDJSON FILE (OpenAI messages with tool_calls)
and gives back every row with its tool calls intact.
"""
import json
import re
import sys


def norm_turns(conv):
    out = []
    for t in conv:
        v = t["value"]
        if t["from"] == "function_call":
            v = json.loads(v)
            if isinstance(v, dict) and isinstance(v.get("arguments"), str):
                v["arguments"] = json.loads(v["arguments"])
        out.append((t["from"], v))
    return out


def main():
    if sys.argv[1] == "--load":
        import datasets
        path = sys.argv[2]
        rows = [json.loads(l) for l in open(path, encoding="utf-8")]
        ds = datasets.load_dataset("json", data_files=[path], split="train")
        assert len(ds) == len(rows), f"datasets read {len(ds)} rows of {len(rows)}"
        calls = lambda msgs: [(c["function"]["name"], json.loads(c["function"]["arguments"]))
                              for m in msgs for c in (m.get("tool_calls") or [])]
        n = 0
        for a, b in zip(rows, ds):
            assert calls(a["messages"]) == calls(b["messages"]), "tool calls changed by datasets"
            n += len(calls(a["messages"]))
        assert n > 100, f"only {n} tool calls"
        print(f"{len(rows)} rows, {n} tool calls")
        return
    source = json.load(open(sys.argv[1], encoding="utf-8"))
    rejected = set()
    for line in open(sys.argv[2], encoding="utf-8"):
        m = re.search(r"array element (\d+)", json.loads(line)["where"])
        rejected.add(int(m.group(1)) - 1)
    kept = [r for i, r in enumerate(source) if i not in rejected]
    assert sum(1 for r in kept if any(t["from"] == "function_call" for t in r["conversations"])) > 100, "too few tool-call records kept"
    for path in sys.argv[3:]:
        out = json.load(open(path, encoding="utf-8"))
        assert len(out) == len(kept), f"{path}: {len(out)} records, expected {len(kept)} ({len(rejected)} rejected)"
        for i, (a, b) in enumerate(zip(kept, out)):
            assert norm_turns(a["conversations"]) == norm_turns(b["conversations"]), f"{path}: record {i}: turns differ"
            assert json.loads(a["tools"] or "[]") == json.loads(b.get("tools", "[]")), f"{path}: record {i}: tools differ"
    print(f"{len(kept)} records equal in {len(sys.argv) - 3} outputs; {len(rejected)} rejected")


main()
