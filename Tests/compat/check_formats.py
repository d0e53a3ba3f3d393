"""Load gra-format's Alpaca and ShareGPT output with Hugging Face `datasets` and check it
against LLaMA-Factory's dataset rules. Prints 'N passed, M failed' last; exits 1 on failure.

usage: check_formats.py GRA_FORMAT SEEDS_JSON
"""
import json
import os
import subprocess
import sys
import tempfile

import datasets

gra_format, seeds = sys.argv[1], sys.argv[2]
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


def run(args, stdin_path, out_path):
    with open(stdin_path, "rb") as i, open(out_path, "wb") as o:
        r = subprocess.run([gra_format, *args], stdin=i, stdout=o, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise SystemExit(f"gra-format {' '.join(args)} failed: {r.stderr.decode()}")


def llamafactory_alpaca_ok(row):
    """LLaMA-Factory 'alpaca': prompt/query/response columns are strings; history, when
    present, a list of [query, response] string pairs; system a string."""
    if not all(isinstance(row.get(k), str) for k in ("instruction", "input", "output")):
        return False
    if row.get("output") == "" or row.get("instruction") == "":
        return False
    h = row.get("history")
    if h is not None and not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in h):
        return False
    return row.get("system") is None or isinstance(row["system"], str)


def llamafactory_sharegpt_ok(row):
    """LLaMA-Factory 'sharegpt': an optional leading system turn, then human/gpt turns
    strictly alternating (odd positions human, even gpt), an even count, non-empty values."""
    msgs = row["conversations"]
    if msgs and msgs[0]["from"] == "system":
        msgs = msgs[1:]
    if len(msgs) == 0 or len(msgs) % 2 != 0:
        return False
    for i, m in enumerate(msgs):
        if m["from"] != ("human" if i % 2 == 0 else "gpt") or not isinstance(m["value"], str) or not m["value"]:
            return False
    return True


with tempfile.TemporaryDirectory() as tmp:
    # The seeds plus a multi-turn record with a system prompt.
    extra = os.path.join(tmp, "extra.jsonl")
    with open(extra, "w") as f:
        f.write(json.dumps({"id": "mt-1", "domain": "general", "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}]}) + "\n")
    base = os.path.join(tmp, "all.gra.jsonl")
    run(["--to", "gra"], seeds, base)
    with open(base, "ab") as o, open(extra, "rb") as i:
        r = subprocess.run([gra_format, "--to", "gra"], stdin=i, stdout=o)
        assert r.returncode == 0
    n = sum(1 for _ in open(base))
    check("seeds + multi-turn record converted", n == 33, f"got {n} lines")

    for fmt, rule in (("alpaca", llamafactory_alpaca_ok), ("sharegpt", llamafactory_sharegpt_ok)):
        for array in (False, True):
            out = os.path.join(tmp, f"train.{fmt}.{'json' if array else 'jsonl'}")
            run(["--to", fmt, "--strip-meta", "--keep", "id"] + (["--array"] if array else []), base, out)
            label = f"{fmt} {'array' if array else 'jsonl'}"
            try:
                ds = datasets.load_dataset("json", data_files=out, split="train")
            except Exception as e:  # noqa: BLE001 - report any loader failure as a test failure
                check(f"{label}: load_dataset", False, repr(e))
                continue
            check(f"{label}: load_dataset reads {n} rows", ds.num_rows == n, f"got {ds.num_rows}")
            rows = ds.to_list()
            bad = [r.get("id") for r in rows if not rule(r)]
            check(f"{label}: every row follows LLaMA-Factory's {fmt} rules", not bad, f"bad rows: {bad[:5]}")
            mt = next((r for r in rows if r.get("id") == "mt-1"), None)
            if fmt == "alpaca":
                check(f"{label}: multi-turn kept as history", mt and mt["history"] == [["Hi", "Hello."]] and mt["output"] == "Paris." and mt["system"] == "You are terse.", str(mt))
            else:
                check(f"{label}: multi-turn kept as turns", mt and [m["from"] for m in mt["conversations"]] == ["system", "human", "gpt", "human", "gpt"], str(mt))

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
