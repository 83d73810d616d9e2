"""Build, measure and check notebooks/epilogue.ipynb: stage 5's GPT in PyTorch, what tensors
buy, from here to production, and the learner's questions.

Reads notebooks/prose/epilogue.md (its Markdown and ```python cells in order; the cells
`# settings` and `# shared: ...` are the code the notebook, this tool and tests/test_epilogue.py
all run), train5_adam.py, the header in tools/templates/notebook_text.md, the setup cell in
notebooks/prose/cells.py, the {{epi:KEY}} quotes in tools/templates/epilogue_quotes.toml, and:
benchmarks/experiments/figures.json for {{exp:KEY}}, benchmarks/epilogue.json for {{epi:KEY}}.
--measure writes epilogue.json by running the shared cells at the notebook's settings, with the
SHA-256 of the code it ran.

  python tools/epilogue.py             build; keeps the outputs if the code did not change
  python tools/epilogue.py --measure   measure (3-4 minutes), write epilogue.json, then build
  python tools/epilogue.py --execute   build and run the notebook in a fresh kernel (stores the
                                       outputs and the time it took, a figure the prose quotes)
  python tools/epilogue.py --check     fail if the notebook differs from a fresh build, or its
                                       outputs or the measurements come from older code
Needs nbformat; --execute nbclient, ipykernel, matplotlib and torch; --measure torch.
"""
# ruff: noqa: Q000  (measure() keeps the quotes it was measured with: its text is hashed)
import argparse
import inspect
import json
import math
import os
import re
import sys
import time
import tomllib
from pathlib import Path

import stages

TOOL = "tools/epilogue.py"
TOOL_VERSION = "1"   # bump when a change here alters what an executed notebook would show
PROSE = "notebooks/prose/epilogue.md"
NOTEBOOK = "notebooks/epilogue.ipynb"
RESULTS = "benchmarks/epilogue.json"
STAGE5 = stages.STAGE_FILES[5]
FIGURE = re.compile(r"\{\{epi:([^{}]+)\}\}")
SHARED = "# shared:"
SETTINGS = "# settings"
QUOTES = "epilogue_quotes.toml"   # in tools/templates/
MEASURE_STEPS = 1000   # steps of each version that --measure times


def read_prose(root):
    """stages.parse_prose of the prose: (title, teaches, [(kind, text, line)])."""
    return stages.parse_prose((Path(root) / PROSE).read_text(encoding="utf-8"), PROSE)


def code_cells(root, which):
    """The code cells of the prose that start with `which` (SHARED or SETTINGS)."""
    return [text for kind, text, _ in read_prose(root)[2] if kind == "code"
            and text.startswith(which)]


def shared_code(root=stages.ROOT):
    """The settings cell and the shared cells, joined: what the tool and the tests run."""
    return "\n\n\n".join(code_cells(root, SETTINGS) + code_cells(root, SHARED)) + "\n"


def shared_namespace(root=stages.ROOT):
    """The notebook's settings and shared definitions, and STAGE5 and DATA as its setup."""
    ns = {"__name__": "epilogue", "STAGE5": str(Path(root) / STAGE5),
          "DATA": str(Path(root) / "data" / "names.txt")}
    exec(compile(shared_code(root), PROSE, "exec"), ns)
    return ns


def code_sha256(root):
    """What the measurements depend on: the shared code, stage 5's code and measure()'s text."""
    text = "\0".join([shared_code(root), stages.script_code(stages.read_stage(5, root)),
                      inspect.getsource(measure)])
    return stages.sha256(text)


def load_results(root):
    path = Path(root) / RESULTS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def build_notebook(root):
    """(the notebook without outputs, its {{epi:KEY}} keys not in benchmarks/epilogue.json): the
    header, the prose's cells with the setup cell before the first code cell."""
    import nbformat
    title, teaches, items = read_prose(root)
    header = stages.template(
        "notebook_text.md", "epilogue_header", title=title, badge=stages.COLAB_BADGE,
        colab=stages.colab_url(NOTEBOOK), script=STAGE5, script_url=stages.github_url(STAGE5),
        teaches=teaches)
    setup = stages.template("notebooks/prose/cells.py", "epilogue_setup", repo=stages.GITHUB_REPO,
                            branch=stages.GITHUB_BRANCH, script=STAGE5)
    first = next(n for n, (kind, _, _) in enumerate(items) if kind == "code")
    items = [("md", header), *items[:first], ("code", setup), *items[first:]]
    new = {"md": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    cells = [new[kind](text, metadata={"microgpt": {"source": "epilogue"}},
                       id=f"epilogue-cell{n:03d}") for n, (kind, text, *_) in enumerate(items)]
    source = "\0".join([TOOL_VERSION, stages.script_code(stages.read_stage(5, root)),
                        json.dumps(stages.code_sources(cells))])   # prose edits keep the outputs
    quotes = (load_results(root) or {}).get("quotes", {})
    quote = lambda match: quotes.get(match[1].strip(), f"(not measured yet: {match[1].strip()})")
    missing = set()
    for cell in cells:
        if cell.cell_type == "markdown":
            missing |= {key.strip() for key in FIGURE.findall(cell.source)} - set(quotes)
            cell.source = stages.fill_figures(FIGURE.sub(quote, cell.source), PROSE)
    nb = stages.new_notebook(cells, {"generated_by": TOOL, "prose": PROSE,
                                     "source_sha256": stages.sha256(source),
                                     "outputs_from_sha256": None})
    return nb, missing


def count_nodes(loss):
    """Nodes of a Value graph: what backward() walks."""
    seen = set()
    stack = [loss]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node._children)
    return len(seen)


def measure(root):
    """Run the shared code at the notebook's settings: every figure the prose quotes."""
    import torch
    ns = shared_namespace(root)
    settings = re.findall(r'^(\w+) = ', code_cells(root, SETTINGS)[0], re.M)
    out = {'settings': {name: ns[name] for name in settings}}
    # 1. stage 5 and its tensor twin, 1,000 steps each; stage 5 then evaluates and samples
    print('measuring: stage 5 and its tensor twin', file=sys.stderr)
    both = ns['train_both'](ns['STAGE5'], ns['DATA'], MEASURE_STEPS)
    s5 = both['stage5']
    diffs = [abs(a - b) for a, b in zip(both['scalar_losses'], both['tensor_losses'])]
    printed = ns['run_section'](s5, both['sections'], 'evaluation')
    printed += ns['run_section'](s5, both['sections'], 'sampling')
    nodes = []
    fresh, _ = ns['load_stage5'](ns['STAGE5'], ns['DATA'])
    for step in range(20):
        nodes.append(count_nodes(fresh['doc_loss'](fresh['encode'](fresh['train_docs'][step]))))
    batched = ns['time_batched'](fresh, MEASURE_STEPS, ns['big_batch_size'])
    out['stage5'] = {
        'num_steps': MEASURE_STEPS, 'num_params': len(s5['params']),
        'num_train': len(s5['train_docs']), 'num_val': len(s5['val_docs']),
        'val_loss': float(re.search(r'val loss: ([0-9.]+)', printed).group(1)),
        'samples': re.findall(r'sample \d+: (.*)', printed)}
    out['equal'] = {'steps': MEASURE_STEPS, 'max_difference': max(diffs)}
    out['timing'] = {'steps': MEASURE_STEPS, 'scalar_s_per_step': both['scalar_s_per_step'],
                     'tensor_s_per_step': both['tensor_s_per_step'],
                     'batch_size': ns['big_batch_size'], 'batched_s_per_step': batched,
                     'nodes_per_step': sum(nodes) / len(nodes),
                     'torch': torch.__version__, 'threads': torch.get_num_threads(),
                     'load_avg_1min': os.getloadavg()[0]}
    # 2. the bigger model
    print('measuring: the bigger model', file=sys.stderr)
    stage5 = ns['load_stage5'](ns['STAGE5'], ns['DATA'])[0]
    big, losses, seconds, val = ns['train_big'](stage5, ns['big_n_embd'], ns['big_n_layer'],
                                                ns['big_batch_size'], ns['big_num_steps'],
                                                ns['big_learning_rate'])
    samples = ns['sample'](big, ns['big_num_samples'], stage5['temperature'], stage5['n_head'],
                           stage5['block_size'], stage5['BOS'], stage5['uchars'], seed=0)
    train_names = set(stage5['train_docs'])
    positions = [min(stage5['block_size'], len(doc) + 1) for doc in stage5['train_docs']]
    out['big'] = {'n_embd': ns['big_n_embd'], 'n_layer': ns['big_n_layer'],
                  'batch_size': ns['big_batch_size'], 'num_steps': ns['big_num_steps'],
                  'num_params': sum(w.numel() for w in big.values()),
                  'train_seconds': seconds, 'val_loss': val,
                  'tokens_per_name': sum(positions) / len(positions),
                  'samples': samples[:20], 'num_samples': len(samples),
                  'in_train': sum(name in train_names for name in samples)}
    # 3. byte-pair encoding and fine-tuning
    print('measuring: byte-pair encoding and fine-tuning', file=sys.stderr)
    merges, _ = ns['learn_bpe'](stage5['train_docs'], ns['num_merges'])
    chars = sum(len(doc) for doc in stage5['val_docs'])
    tokens = sum(len(ns['bpe_encode'](doc, merges)) for doc in stage5['val_docs'])
    out['bpe'] = {'num_merges': len(merges), 'chars': chars, 'tokens': tokens,
                  'first_merges': [[a, b, count] for (a, b), count in merges[:10]]}
    num_docs, (before, after), tuned = ns['finetune'](stage5, big, ns['finetune_prefix'],
                                                      ns['finetune_steps'])
    out['finetune'] = {'prefix': ns['finetune_prefix'], 'steps': ns['finetune_steps'],
                       'num_docs': num_docs, 'before': before, 'after': after,
                       'samples': tuned}
    return out


def quotes_of(m):
    """{key: text} of every figure the prose may quote, from the measurements m: the f-strings of
    tools/templates/epilogue_quotes.toml."""
    t, big = m["timing"], m["big"]
    ms = {f"{kind}_ms": 1000 * t[f"{kind}_s_per_step"] for kind in ("scalar", "tensor", "batched")}
    names_seen = big["batch_size"] * big["num_steps"]
    # the scalar engine's time per name grows about in proportion to the parameters
    scalar_hours = (t["scalar_s_per_step"] * names_seen * big["num_params"]
                    / m["stage5"]["num_params"] / 3600)
    values = {**m, **ms, "math": math, "per_name": ms["batched_ms"] / t["batch_size"],
              "names_seen": names_seen, "scalar_hours": scalar_hours}
    formats = tomllib.loads((stages.TEMPLATES / QUOTES).read_text(encoding="utf-8"))
    texts = formats["measured"] | (formats["notebook"] if "notebook" in m else {})
    return {key: eval(f"f{text!r}", values) for key, text in texts.items()}


def write_results(root, measured):
    measured["quotes"] = quotes_of(measured)
    text = json.dumps(measured, indent=1, sort_keys=True) + "\n"
    (Path(root) / RESULTS).write_text(text, encoding="utf-8")


def check(root):
    """Problems of the measurements and the committed notebook, one line each."""
    results = load_results(root)
    if results is None:
        problems = [f"{RESULTS}: missing (run python {TOOL} --measure)"]
    elif results.get("code_sha256") != code_sha256(root):
        problems = [f"{RESULTS}: measured other code (run python {TOOL} --measure)"]
    else:
        problems = [f"{RESULTS}: its quotes differ from its measurements"
                    ] if results.get("quotes") != quotes_of(results) else []
    nb, missing = build_notebook(root)
    return problems + [f"{PROSE}: figure {{{{epi:{key}}}}} is not in {RESULTS}"
                       for key in sorted(missing)] + stages.notebook_problems(
        nb, Path(root) / NOTEBOOK, NOTEBOOK)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify, write nothing")
    parser.add_argument("--measure", action="store_true", help=f"write {RESULTS}")
    parser.add_argument("--execute", action="store_true", help="run the notebook, keep outputs")
    args = parser.parse_args()
    root = stages.ROOT
    if args.check:
        problems = check(root)
        if problems:
            print("\n".join(problems), file=sys.stderr)
            raise stages.CourseError(f"the epilogue is stale: run python {TOOL} (see above)")
        print("the epilogue is up to date")
        return
    results = load_results(root)
    if args.measure:
        start = time.perf_counter()
        results = {**(results or {}), **measure(root), "code_sha256": code_sha256(root),
                   "generated": f"by python {TOOL} --measure; do not edit: rerun the tool"}
        print(f"{RESULTS}: measured in {time.perf_counter() - start:.0f} s")
    if results is not None:   # the quotes follow a change of quotes_of()
        write_results(root, results)
    nb, missing = build_notebook(root)
    for key in sorted(missing):
        print(f"warning: figure {key} is not measured yet", file=sys.stderr)
    path = Path(root) / NOTEBOOK
    if args.execute:
        nb, seconds = stages.run_for_outputs(nb, path.parent)
        note = f"executed in {seconds:.0f} s"
        if results is not None:   # the run time is a figure the prose quotes
            results["notebook"] = {"seconds": seconds, "load_avg_1min": os.getloadavg()[0],
                                   "cpu_count": os.cpu_count()}
            write_results(root, results)
            for cell, new in zip(nb.cells, build_notebook(root)[0].cells):
                cell.source = new.source
    else:
        nb, note = stages.outputs_for(nb, path)
    path.write_text(stages.notebook_text(nb), encoding="utf-8")
    print(f"{NOTEBOOK}: {note}")


if __name__ == "__main__":
    stages.run(main)
