"""Write the generated tables of README.md: the course table and the benchmark table.

Each goes between a pair of marker lines in README.md and nothing outside them is touched:

    <!-- BEGIN generated: course table (tools/readme_figures.py) -->
    <!-- END generated: course table -->
    <!-- BEGIN generated: benchmarks (tools/readme_figures.py) -->
    <!-- END generated: benchmarks -->

The figures come from benchmarks/results.json (`python tools/benchmark.py --full`) and
benchmarks/engine.json (`python tools/benchmark.py --engine-compare`); line counts of the stage
diffs from tools/stages.py; the GitHub repository of the Colab badges from tools/repo.py.

    python tools/readme_figures.py            # rewrite the two blocks of README.md
    python tools/readme_figures.py --check    # write nothing; exit 1 if a block is out of date
                                              # or results.json measured other scripts

Standard library only.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import repo
import stages

TOOL = "tools/readme_figures.py"
README = stages.ROOT / "README.md"
RESULTS = stages.ROOT / "benchmarks" / "results.json"
ENGINE = stages.ROOT / "benchmarks" / "engine.json"
COURSE_MARKERS = (f"<!-- BEGIN generated: course table ({TOOL}) -->",
                  "<!-- END generated: course table -->")
BENCH_MARKERS = (f"<!-- BEGIN generated: benchmarks ({TOOL}) -->",
                 "<!-- END generated: benchmarks -->")


class Stale(Exception):
    """The README or the recorded figures do not match what is in the repository now."""


def machine_line(machine):
    cpu = f", {machine['cpu']}" if machine.get("cpu") else ""
    return (f"{machine['platform']}, Python {machine['python']}, "
            f"{machine['cpu_count']} CPUs{cpu}")


def seconds(value):
    """A duration for a table: 3 significant figures, at most 2 decimals."""
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s"


def step_time(value):
    return f"{value * 1000:.3g} ms"


def render_course_table(results, diff_counts):
    """Markdown of the course table. diff_counts[k] is (added, removed) from stage k-1 to k."""
    lines = [
        "| stage | script | concept | params | lines | change vs previous | val loss | "
        "train loss (last 50) | train time | notebook |",
        "|---:|---|---|---:|---:|---|---:|---:|---:|---|",
    ]
    for row in results["stages"]:
        k = row["stage"]
        script = row["file"]
        stem = Path(script).stem
        if k == 0:
            change = "-"
        else:
            added, removed = diff_counts[k]
            change = f"[+{added} / -{removed}](diffs/train{k - 1}_to_train{k}.diff)"
        notebook = f"notebooks/{stem}.ipynb"
        badge = f"[![Open In Colab]({repo.COLAB_BADGE})]({repo.colab_url(notebook)})"
        cells = [
            str(k),
            f"[{script}]({script})",
            stages.CONCEPTS[k],
            f"{row['num_params']:,}",
            str(row["lines"]),
            change,
            f"{row['val_loss']:.4f}",
            f"{row['train_loss_last50']:.4f}",
            seconds(row["train_time_s"]),
            f"[{stem}.ipynb]({notebook}) {badge}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Each script run once at its defaults (`python trainN.py`); losses are in nats per "
        "character, train time excludes evaluation and sampling. Lines: non-blank lines of the "
        "script. Measured on " + machine_line(results["machine"])
        + f" by `python tools/benchmark.py --full`; `python {TOOL}` writes this table.")
    return "\n".join(lines) + "\n"


def render_benchmarks(engine):
    """Markdown of the before/after engine table from engine.json's contents."""
    before = engine["before"]
    after = engine["after"]
    lines = [
        "| stage | graph nodes per step, before -> after | time per step, before -> after | "
        "step speedup | full run, before -> after | full run speedup | "
        "peak memory, before -> after |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    full_before = {row["stage"]: row for row in before["full"]}
    full_after = {row["stage"]: row for row in after["full"]}
    for b, a in zip(before["bench"], after["bench"]):
        k = b["stage"]
        fb = full_before[k]
        fa = full_after[k]
        cells = [
            f"{k} ({stages.CONCEPTS[k]})",
            f"{b['nodes_per_step']:,.0f} -> {a['nodes_per_step']:,.0f}",
            f"{step_time(b['s_per_step'])} -> {step_time(a['s_per_step'])}",
            f"{b['s_per_step'] / a['s_per_step']:.1f}x",
            f"{seconds(fb['wall_s'])} -> {seconds(fa['wall_s'])}",
            f"{fb['wall_s'] / fa['wall_s']:.1f}x",
            f"{fb['peak_rss_kb'] / 1024:.0f} MB -> {fa['peak_rss_kb'] / 1024:.0f} MB",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Before: `{before['rev']}`, where `dot` is a chain of binary `*` and `+` nodes; after: "
        f"`{after['rev']}` (`{after['commit'][:7]}`), one `dot` node per sum of products. "
        f"Per step: the mean over the first {engine['steps']} training names of forward, backward, "
        "update and freeing the graph; graph nodes are the Values reachable from the loss. "
        "Full run: `python trainN.py` at its defaults, start to exit (training, evaluation and "
        "sampling); peak memory is its maximum resident set size. Measured on "
        + machine_line(engine["machine"])
        + " by `python tools/benchmark.py --engine-compare`; details in "
        "[benchmarks/README.md](benchmarks/README.md).")
    return "\n".join(lines) + "\n"


def replace_block(text, markers, content):
    """text with the lines between the two marker lines replaced by content."""
    begin, end = markers
    lines = text.split("\n")
    if lines.count(begin) != 1 or lines.count(end) != 1:
        raise ValueError(f"README.md needs the marker line {begin!r} once, and {end!r} once")
    i = lines.index(begin)
    j = lines.index(end)
    if j < i:
        raise ValueError(f"README.md has {end!r} before {begin!r}")
    return "\n".join(lines[:i + 1]) + "\n" + content + "\n".join(lines[j:])


def load_json(path, how):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Stale(f"{path.relative_to(stages.ROOT)} is missing: run {how}") from None


def check_hashes(results):
    """Raise Stale if results.json measured scripts other than the current ones."""
    for row in results["stages"]:
        path = stages.stage_path(row["stage"])
        current = hashlib.sha256(path.read_bytes()).hexdigest()
        if current != row["sha256"]:
            raise Stale(f"benchmarks/results.json measured another version of {path.name}: "
                        "rerun python tools/benchmark.py --full")


def render_readme(readme_text):
    """README.md's text with both generated blocks rendered from the current figures."""
    results = load_json(RESULTS, "python tools/benchmark.py --full")
    engine = load_json(ENGINE, "python tools/benchmark.py --engine-compare")
    diff_counts = {k: stages.diff_counts(k) for k in range(1, len(stages.STAGE_FILES))}
    text = replace_block(readme_text, COURSE_MARKERS, render_course_table(results, diff_counts))
    return replace_block(text, BENCH_MARKERS, render_benchmarks(engine))


def check():
    """Raise Stale unless README.md's blocks and results.json are up to date."""
    results = load_json(RESULTS, "python tools/benchmark.py --full")
    check_hashes(results)
    text = README.read_text(encoding="utf-8")
    if render_readme(text) != text:
        raise Stale(f"README.md's generated tables are out of date: run python {TOOL}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = lambda message: sys.exit(f"error: {message} (see --help)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if README.md or the figures are stale")
    opts = parser.parse_args()
    try:
        if opts.check:
            check()
            print("README.md's generated tables are up to date")
            return
        try:
            check_hashes(load_json(RESULTS, "python tools/benchmark.py --full"))
        except Stale as e:
            print(f"warning: {e}", file=sys.stderr)
        text = README.read_text(encoding="utf-8")
        new_text = render_readme(text)
        if new_text != text:
            README.write_text(new_text, encoding="utf-8")
            print("updated README.md")
        else:
            print("README.md already up to date")
    except (Stale, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
