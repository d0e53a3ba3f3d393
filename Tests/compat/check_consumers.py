"""Does a training file load in the tools people train with?

Loads FILE (JSON array or NDJSON, e.g. written by gra-format) the way its consumers do:

  (a) Hugging Face `datasets`: load_dataset("json", data_files=[FILE], split="train"),
      exactly the call LLaMA-Factory's loader makes for a local file;
  (b) LLaMA-Factory's own converter: the installed `llamafactory` package's DatasetAttr
      (from a dataset_info.json entry) and align_dataset(), which maps every row through
      AlpacaDatasetConverter / SharegptDatasetConverter / OpenAIDatasetConverter.

and then checks every converted row as LLaMA-Factory's dataset processors would accept it
(odd-length prompt alternating user/observation and assistant/function turns, one response
for SFT, two for ranking), with non-empty texts, tool descriptions and function calls that
LLaMA-Factory's ToolFormatter / FunctionFormatter can parse. It also reads the raw file with
json's object_pairs_hook and fails on any JSON object with a repeated key (parsers disagree
on which copy wins).

LLaMA-Factory is not copied here: it is imported from the package installed by
Tests/compat/setup-venv (pip install --no-deps llamafactory==<pin>). Its data converter
needs no torch, but the package's __init__ files and llamafactory.extras.{constants,misc}
import torch, transformers, peft, … at module level; a small import shim (lf_import below)
serves inert stand-ins for those and skips the two heavy package __init__ files, so the real
converter.py / parser.py / formatter.py / data_utils.py run unchanged.

usage:
  check_consumers.py [--format alpaca|sharegpt|openai] [--tools] [--ranking]
                     [--info JSON] [--name NAME] FILE

  --format   the declared format (default: alpaca)
  --tools    sharegpt/openai with a `tools` column and function_call / observation turns,
             as LLaMA-Factory's data/dataset_info.json entry for glaive_toolcall_en_demo
  --ranking  preference data (chosen / rejected columns)
  --info     a dataset_info.json entry (JSON) to use instead of the one built from the flags,
             e.g. '{"formatting":"sharegpt","columns":{"messages":"messages","kto_tag":"label"},
                    "tags":{"role_tag":"role","content_tag":"content","user_tag":"user",
                            "assistant_tag":"assistant"}}'
  --name     a label for the output lines (default: the file's name)

Prints one line per check ("ok   …" / "FAIL …", with up to 5 indented examples), then a
last line exactly "N passed, M failed". Exit status 1 if any check failed, 2 on usage errors.
"""
import argparse
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import logging
import os
import sys
import tempfile
import types

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DISABLE_VERSION_CHECK", "1")

MAX_EXAMPLES = 5


# ---------------------------------------------------------------------------------------------
# The import shim: LLaMA-Factory's data code without torch.

HEAVY = {
    "torch", "torchvision", "torchaudio", "torchdata", "transformers", "peft", "accelerate",
    "trl", "deepspeed", "vllm", "sglang", "bitsandbytes", "liger_kernel", "flash_attn",
    "modelscope", "openmind", "av", "librosa", "gradio", "matplotlib", "tiktoken",
    "sentencepiece", "omegaconf", "fire", "tyro", "einops",
}


class _StubMeta(type):
    """Any attribute of a stand-in is another stand-in class: subclassable, callable,
    falsy when called (so `is_torch_cuda_available()` is False)."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_class(f"{cls.__qualname__}.{name}")

    def __bool__(cls):
        return True


class _Stub(metaclass=_StubMeta):
    def __init__(self, *a, **k):
        pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub_class(name)

    def __call__(self, *a, **k):
        return _Stub()

    def __bool__(self):
        return False

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


def _stub_class(qualname):
    return _StubMeta(qualname.rsplit(".", 1)[-1], (_Stub,), {"__qualname__": qualname})


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        if name.isupper():  # constants such as WEIGHTS_NAME: a distinct, hashable string
            return f"<stub {self.__name__}.{name}>"
        return _stub_class(f"{self.__name__}.{name}")


class _HeavyFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves a _StubModule for every module under a HEAVY top-level name."""

    def __init__(self):
        self.served = set()

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".", 1)[0] in HEAVY:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        m.__version__ = "0.0.0+stub"
        return m

    def exec_module(self, module):
        self.served.add(module.__name__.split(".", 1)[0])


def lf_import():
    """Import LLaMA-Factory's data converter from the installed package, torch-free.

    Returns a namespace with the package's own objects and what the shim did."""
    finder = _HeavyFinder()
    sys.meta_path.insert(0, finder)
    spec = importlib.util.find_spec("llamafactory")  # locates, does not execute, the package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("check_consumers: llamafactory is not installed (run Tests/compat/setup-venv)")
    root = list(spec.submodule_search_locations)[0]
    # Empty package objects for llamafactory and llamafactory.data: their __init__ files import
    # the trainer, templates and collators. Submodules still load from the installed files.
    for name, sub in (("llamafactory", ""), ("llamafactory.data", "data")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [os.path.join(root, sub) if sub else root]
        pkg.__package__ = name
        pkg.__file__ = os.path.join(pkg.__path__[0], "__init__.py")
        pkg.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        pkg.__spec__.submodule_search_locations = pkg.__path__
        sys.modules[name] = pkg
    import llamafactory.data.converter as converter
    import llamafactory.data.data_utils as data_utils
    import llamafactory.data.formatter as formatter
    import llamafactory.data.parser as parser
    import llamafactory.extras.env as env

    # LLaMA-Factory logs to stdout; keep its warnings ("Invalid role tag …", "Skipping this
    # abnormal example.") for the report instead.
    lf_log = logging.getLogger("llamafactory")
    for h in list(lf_log.handlers):
        lf_log.removeHandler(h)
    lf_log.propagate = False
    lf_log.setLevel(logging.WARNING)
    captured = []

    class _Collect(logging.Handler):
        def emit(self, record):
            captured.append(record.getMessage())

    lf_log.addHandler(_Collect())
    return types.SimpleNamespace(
        converter=converter, parser=parser, formatter=formatter, Role=data_utils.Role,
        version=env.VERSION, dist_version=importlib.metadata.version("llamafactory"),
        root=root, stubbed=finder.served, warnings=captured,
    )


# ---------------------------------------------------------------------------------------------
# Reporting

passed = failed = 0


def check(name, ok, detail="", examples=()):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {name}" + (f" ({detail})" if detail else ""))
    else:
        failed += 1
        print(f"FAIL {name}" + (f": {detail}" if detail else ""))
        for e in list(examples)[:MAX_EXAMPLES]:
            print(f"       {e}")
    sys.stdout.flush()


def short(v, n=160):
    s = json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v
    return s if len(s) <= n else s[: n - 1] + "…"


# ---------------------------------------------------------------------------------------------
# (0) The raw file: records and duplicate keys


def read_raw(path):
    """Returns (records, duplicates, error). Each duplicate is (record number, key, object)."""
    dups = []
    where = {"n": 0}

    def hook(pairs):
        seen = set()
        for k, _ in pairs:
            if k in seen:
                dups.append((where["n"], k, [k2 for k2, _ in pairs]))
            seen.add(k)
        return dict(pairs)

    dec = json.JSONDecoder(object_pairs_hook=hook)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, dups, f"cannot read: {e}"
    records = []
    ws = " \t\r\n"
    i = 0
    while i < len(text) and text[i] in ws:
        i += 1
    if text.startswith("\ufeff"):
        return None, dups, "starts with a byte order mark"
    if i < len(text) and text[i] == "[":  # one JSON array: decode element by element
        i += 1
        first = True
        while True:
            while i < len(text) and text[i] in ws:
                i += 1
            if i < len(text) and text[i] == "]":
                i += 1
                break
            if not first:
                if i >= len(text) or text[i] != ",":
                    return None, dups, f"array element {len(records) + 1}: expected ',' or ']' at offset {i}"
                i += 1
                while i < len(text) and text[i] in ws:
                    i += 1
            first = False
            where["n"] = len(records) + 1
            try:
                v, i = dec.raw_decode(text, i)
            except json.JSONDecodeError as e:
                return None, dups, f"array element {where['n']}: {e}"
            records.append(v)
        if text[i:].strip(ws):
            return None, dups, f"text after the array at offset {i}"
    else:  # NDJSON
        for ln, line in enumerate(text.split("\n"), 1):
            if not line.strip(ws):
                continue
            where["n"] = ln
            try:
                records.append(dec.decode(line))
            except json.JSONDecodeError as e:
                return None, dups, f"line {ln}: {e}"
    return records, dups, None


# ---------------------------------------------------------------------------------------------
# (b) LLaMA-Factory's DatasetAttr for the declared format


def dataset_info_entry(args, records, file_name):
    if args.info:
        entry = json.loads(args.info)
        entry.setdefault("file_name", file_name)
        return entry
    keys = set()
    for r in records:
        if isinstance(r, dict):
            keys.update(r)
    entry = {"file_name": file_name}
    if args.format == "alpaca":
        # LLaMA-Factory's data/README.md entry for alpaca; system and history only when the
        # file has them (a declared column the file lacks is a KeyError in LLaMA-Factory).
        cols = {"prompt": "instruction", "query": "input", "response": "output"}
        for c in ("system", "history"):
            if c in keys:
                cols[c] = c
        if args.tools or "tools" in keys:
            cols["tools"] = "tools"
        if args.ranking:
            entry["ranking"] = True
            cols.update(chosen="chosen", rejected="rejected")
        entry["columns"] = cols
    elif args.format == "sharegpt":
        entry["formatting"] = "sharegpt"
        cols = {"messages": "conversations"}
        if "system" in keys:
            cols["system"] = "system"
        if args.tools:
            cols["tools"] = "tools"  # as data/dataset_info.json's glaive_toolcall_en_demo
        if args.ranking:
            entry["ranking"] = True
            cols.update(chosen="chosen", rejected="rejected")
        entry["columns"] = cols
    else:  # openai
        entry["formatting"] = "openai"
        cols = {"messages": "messages"}
        if "system" in keys:
            cols["system"] = "system"
        if args.tools:
            cols["tools"] = "tools"
        if args.ranking:
            entry["ranking"] = True
            cols.update(chosen="chosen", rejected="rejected")
        entry["columns"] = cols
        entry["tags"] = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                         "assistant_tag": "assistant", "observation_tag": "tool",
                         "function_tag": "function_call", "system_tag": "system"}
    return entry


def make_attr(lf, entry):
    # What parser.get_dataset_list does for a local file entry.
    attr = lf.parser.DatasetAttr("file", dataset_name=entry["file_name"])
    attr.join(entry)
    return attr


def data_args(path):
    return types.SimpleNamespace(streaming=False, preprocessing_num_workers=None, overwrite_cache=True,
                                 media_dir=os.path.dirname(os.path.abspath(path)),
                                 dataset_dir=os.path.dirname(os.path.abspath(path)))


def row_problems(lf, attr, row, tool_fmt, func_fmt):
    """Why LLaMA-Factory would drop or mis-train on an aligned row ([] if none)."""
    R = lf.Role
    prompt, response = row["_prompt"], row["_response"]
    kto = bool(attr.kto_tag)
    if not prompt and not response:
        return ["LLaMA-Factory skipped it (broken data: roles do not alternate or wrong turn count)"]
    p = []
    # The dataset processors' own conditions (processor/supervised.py, pairwise.py, feedback.py).
    if len(prompt) % 2 != 1:
        p.append(f"prompt has {len(prompt)} turns, processors need an odd number")
    if attr.ranking or kto:
        if len(response) < 2:
            p.append(f"{len(response)} responses, ranking/kto needs 2")
    elif len(response) != 1:
        p.append(f"{len(response)} responses, SFT needs exactly 1")
    odd = (R.USER.value, R.OBSERVATION.value)
    even = (R.ASSISTANT.value, R.FUNCTION.value)
    for i, m in enumerate(prompt):
        if m.get("role") not in (odd if i % 2 == 0 else even):
            p.append(f"prompt turn {i + 1} has role {m.get('role')!r}")
        c = m.get("content")
        if not isinstance(c, str):
            p.append(f"prompt turn {i + 1} content is {type(c).__name__}")
        elif not c.strip():
            p.append(f"prompt turn {i + 1} ({m.get('role')}) is empty")
    for j, m in enumerate(response):
        if m.get("role") not in even:
            p.append(f"response {j + 1} has role {m.get('role')!r}")
        c = m.get("content")
        if not isinstance(c, str):
            p.append(f"response {j + 1} content is {type(c).__name__}")
        elif not c.strip() and not kto:  # kto pads with one empty assistant turn on purpose
            p.append(f"response {j + 1} is empty")
    if kto and not any(isinstance(m.get("content"), str) and m["content"].strip() for m in response):
        p.append("kto response is empty")
    if not isinstance(row["_system"], str):
        p.append(f"system is {type(row['_system']).__name__}, not a string")
    tools = row["_tools"]
    if attr.tools:
        if not isinstance(tools, str):
            p.append(f"tools is {type(tools).__name__}, LLaMA-Factory needs a JSON string")
        elif tools:
            try:  # what the template does with the tools column
                tool_fmt.apply(content=tools)
            except Exception as e:
                p.append(f"ToolFormatter rejects tools: {short(str(e), 100)}")
    for m in prompt + response:
        if m.get("role") == R.FUNCTION.value and isinstance(m.get("content"), str):
            try:  # what the template does with a function_call turn
                func_fmt.apply(content=m["content"])
            except Exception as e:
                p.append(f"FunctionFormatter rejects function_call: {short(str(e), 100)}")
            if attr.tools and not tools:
                p.append("function_call turn but no tools")
    return p


def main():
    ap = argparse.ArgumentParser(add_help=True, usage=__doc__.split("usage:")[1].split("\n\n")[0])
    ap.add_argument("--format", choices=["alpaca", "sharegpt", "openai"], default="alpaca")
    ap.add_argument("--tools", action="store_true")
    ap.add_argument("--ranking", action="store_true")
    ap.add_argument("--info")
    ap.add_argument("--name")
    ap.add_argument("file")
    args = ap.parse_args()
    path = args.file
    label = args.name or os.path.basename(path)

    # (0) raw JSON
    records, dups, err = read_raw(path)
    check(f"{label}: parses as JSON (array or NDJSON)", err is None, err or f"{len(records)} records")
    if records is None:
        return finish()
    check(f"{label}: no duplicate keys in any JSON object", not dups,
          f"{len(dups)} duplicate key(s) in {len({d[0] for d in dups})} record(s)" if dups else "",
          [f"record {n}: key {k!r} repeated in object with keys {ks}" for n, k, ks in dups])
    check(f"{label}: has at least one record", len(records) > 0, "" if records else "the file holds no record")
    if not records:
        return finish()
    nonobj = [i + 1 for i, r in enumerate(records) if not isinstance(r, dict)]
    check(f"{label}: every record is a JSON object", not nonobj, f"{len(nonobj)} are not" if nonobj else "",
          [f"record {i}" for i in nonobj])
    ext = os.path.splitext(path)[1][1:]
    check(f"{label}: file extension LLaMA-Factory accepts (.json/.jsonl)", ext in ("json", "jsonl"),
          f".{ext}" if ext else "no extension")

    lf = lf_import()
    print(f"info {label}: llamafactory {lf.dist_version} from {lf.root} "
          f"(stubbed for import: {', '.join(sorted(lf.stubbed)) or 'nothing'})")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()

    entry = dataset_info_entry(args, records, os.path.basename(path))
    attr = make_attr(lf, entry)
    print(f"info {label}: dataset_info entry {json.dumps(entry, ensure_ascii=False)}")

    with tempfile.TemporaryDirectory(prefix="check-consumers-") as cache:
        # (a) Hugging Face datasets, as LLaMA-Factory's loader calls it for a local file.
        try:
            ds = datasets.load_dataset("json", data_files=[os.path.abspath(path)], split="train", cache_dir=cache)
            n = ds.num_rows
            check(f"{label}: datasets.load_dataset('json') reads every record", n == len(records),
                  f"{n} rows, {len(records)} records; columns {ds.column_names}")
        except Exception as e:
            msg, c = f"{type(e).__name__}: {e}", e.__cause__ or e.__context__
            while c is not None:  # datasets wraps the parser's error; show what it was
                msg += f" <- {type(c).__name__}: {c}"
                c = c.__cause__ or c.__context__
            check(f"{label}: datasets.load_dataset('json') reads every record", False, short(msg, 400))
            return finish()

        # (b) LLaMA-Factory's align_dataset over the datasets rows.
        needed = [attr.history, attr.system, attr.tools, attr.chosen, attr.rejected, attr.kto_tag]
        needed += [attr.prompt, attr.query, attr.response] if attr.formatting == "alpaca" else [attr.messages]
        missing = [c for c in needed if c and c not in ds.column_names]
        check(f"{label}: declared columns are present", not missing, f"missing {missing}" if missing else
              ", ".join(f"{k}={v}" for k, v in entry.get("columns", {}).items()) or "alpaca defaults")
        if missing:
            return finish()
        training_args = types.SimpleNamespace(local_process_index=0)
        lf.warnings.clear()
        try:
            aligned = lf.converter.align_dataset(ds, attr, data_args(path), training_args)
            rows = aligned.to_list()
            check(f"{label}: llamafactory align_dataset ({attr.formatting}) converts every row", len(rows) == n,
                  f"{len(rows)} rows")
        except Exception as e:
            check(f"{label}: llamafactory align_dataset ({attr.formatting}) converts every row", False,
                  f"{type(e).__name__}: {short(str(e), 400)}")
            return finish()

        tool_fmt = lf.formatter.ToolFormatter(tool_format="default")
        func_fmt = lf.formatter.FunctionFormatter(slots=["{{content}}"], tool_format="default")
        bad, tool_rows, multi = [], 0, 0
        for i, row in enumerate(rows):
            roles = [m["role"] for m in row["_prompt"] + row["_response"]]
            tool_rows += "function" in roles
            multi += len(row["_prompt"]) > 1
            for prob in row_problems(lf, attr, row, tool_fmt, func_fmt):
                bad.append((i + 1, prob))
        bad_rows = sorted({b[0] for b in bad})
        detail = (f"{len(rows) - len(bad_rows)}/{len(rows)} rows; tool-call rows {tool_rows}, multi-turn rows {multi}")
        ex = [f"row {r}: {p}" for r, p in bad]
        if lf.warnings and bad:
            ex.append(f"LLaMA-Factory said: {short(lf.warnings[0], 200)}")
        check(f"{label}: every converted row is well-formed for LLaMA-Factory", not bad, detail, ex)

        # The same converter on the raw records (no Arrow in between): datasets must not have
        # changed what LLaMA-Factory sees (Arrow unifies types across rows, fills missing keys).
        conv = lf.converter.get_dataset_converter(attr.formatting, attr, data_args(path))
        cols = ds.column_names
        diffs = []
        for i, (rec, row) in enumerate(zip(records, rows)):
            if not isinstance(rec, dict):
                continue
            full = {c: rec.get(c) for c in cols}
            try:
                direct = conv(full)
            except Exception as e:
                diffs.append(f"row {i + 1}: converter fails on the raw record: {type(e).__name__}: {short(str(e), 100)}")
                continue
            for k in ("_prompt", "_response", "_system", "_tools"):
                if direct[k] != row[k]:
                    diffs.append(f"row {i + 1}: {k} raw {short(direct[k], 70)} vs datasets {short(row[k], 70)}")
                    break
        lf.warnings.clear()
        check(f"{label}: datasets rows convert the same as the raw JSON records", not diffs,
              f"{len(diffs)} differ" if diffs else "", diffs)
    return finish()


def finish():
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
