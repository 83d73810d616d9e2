"""Write the generated blocks of README.md ("what you will see", "what each concept buys",
"course table", "benchmarks") and of benchmarks/README.md ("reference comparison", "engine
details", "paired", "profile"), between the marker lines of stages.markers; nothing else.

Reads benchmarks/results.json and seeds.json (tools/benchmark.py --full, --seeds), which must
have measured the current stage scripts; the finished records benchmarks/engine.json, paired.json
and reference.json; benchmarks/profile.txt; the diffs' line counts (stages.diff_counts); the
tables and notes of tools/templates/readme_figures.md; tools/templates/readme_concepts.md, its
{{exp:KEY}} filled from benchmarks/experiments/figures.json (stages.fill_figures).

    python tools/readme_figures.py            # rewrite the generated blocks
    python tools/readme_figures.py --check    # write nothing; exit 1 if a block is out of date
                                              # or results.json / seeds.json measured other scripts
"""
import argparse
import json
import sys

import stages
from stages import CourseError

TOOL = "tools/readme_figures.py"
README = stages.ROOT / "README.md"
BENCH = stages.ROOT / "benchmarks"
FULL_COMMAND = "python tools/benchmark.py --full"
MEASURED = {"results": FULL_COMMAND, "seeds": "python tools/benchmark.py --seeds 1 2 ... 10"}


def block(part, rows=(), **values):
    """Part `part` of tools/templates/readme_figures.md, its {{rows}} the Markdown rows of the
    lists of cells `rows`, and a final newline."""
    rows = "\n".join("| " + " | ".join(map(str, row)) + " |" for row in rows)
    return stages.template("readme_figures.md", part, rows=rows, **values) + "\n"


def seconds(value):
    """A duration for a table: 3 significant figures, at most 2 decimals."""
    return f"{value:.{0 if value >= 100 else 1 if value >= 10 else 2}f} s"


def spread(values):
    """'mean (min-max)' of a list of losses."""
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def stage_label(k):
    return f"{k} ({stages.CONCEPTS[k]})"


def render_course_table(results, diff_counts):
    """The course table. diff_counts[k] is (added, removed) from stage k-1 to k."""
    rows = []
    for row in results["stages"]:
        k, script = row["stage"], row["file"]
        stem = script.removesuffix(".py")
        added, removed = diff_counts.get(k, (0, 0))
        change = f"[+{added} / -{removed}](diffs/{stages.diff_name(k)}.diff)" if k else "-"
        notebook = f"notebooks/{stem}.ipynb"
        badge = f"[![Open In Colab]({stages.COLAB_BADGE})]({stages.colab_url(notebook)})"
        rows.append([k, f"[{script}]({script})", stages.CONCEPTS[k], f"{row['num_params']:,}",
                     row["lines"], change, f"{row['val_loss']:.4f}",
                     f"{row['train_loss_last50']:.4f}", seconds(row["cpu_s"]),
                     f"[{stem}.ipynb]({notebook}) {badge}"])
    return block("course", rows, tool=TOOL, command=FULL_COMMAND,
                 machine=stages.machine_line(results["machine"]))


def render_reference_table(reference, results, seeds):
    """Our figures next to the reference's: the default run (seed 42) and the spread of the
    last-50 train loss and of the val loss over the seeds of seeds.json."""
    seed_list = seeds["seeds"]
    label = ("seeds " + ", ".join(map(str, seed_list)) if seed_list != list(
        range(seed_list[0], seed_list[-1] + 1)) else f"seeds {seed_list[0]}-{seed_list[-1]}")
    refs = {row["stage"]: row for row in reference["stages"]}
    runs = {row["stage"]: row["runs"] for row in seeds["stages"]}
    rows = []
    for row in results["stages"]:
        k = row["stage"]
        last50 = [run["train_loss_last50"] for run in runs[k]]
        ref = refs[k]["train_loss_last50"]
        within = sum(1 for loss in last50 if loss <= ref + 0.01)
        rows.append([stage_label(k), f"{ref:.3f}", f"{row['train_loss_last50']:.4f}",
                     spread(last50), f"{within} of {len(last50)}",
                     spread([run["val_loss"] for run in runs[k]]),
                     seconds(refs[k]["wall_s"]), seconds(row["cpu_s"])])
    command = f"python tools/benchmark.py --seeds {' '.join(map(str, seed_list))}"
    return block("reference", rows, seeds=label, source=reference["source"], command=command,
                 machine=stages.machine_line(seeds["machine"]))


def render_engine(engine):
    """From engine.json: the README's before/after table of the fused dot, and the full
    measurements of benchmarks/README.md, one row per stage and engine."""
    before, after = engine["before"], engine["after"]
    slots = {"machine": stages.machine_line(engine["machine"]), "command": engine["command"],
             "steps": engine["steps"], "before_rev": before["rev"],
             "before_commit": before["commit"][:7], "after_commit": after["commit"][:7]}
    full = {(key, row["stage"]): row for key in ("before", "after") for row in engine[key]["full"]}
    rows, details = [], []
    for b, a in zip(before["bench"], after["bench"]):
        fb, fa = full["before", b["stage"]], full["after", a["stage"]]
        rows.append([
            stage_label(b["stage"]), f"{b['nodes_per_step']:,.0f} -> {a['nodes_per_step']:,.0f}",
            f"{b['s_per_step'] * 1000:.3g} ms -> {a['s_per_step'] * 1000:.3g} ms",
            f"{b['s_per_step'] / a['s_per_step']:.1f}x",
            f"{seconds(fb['cpu_s'])} -> {seconds(fa['cpu_s'])}",
            f"{fb['cpu_s'] / fa['cpu_s']:.1f}x",
            f"{fb['peak_rss_kb'] / 1024:.0f} MB -> {fa['peak_rss_kb'] / 1024:.0f} MB"])
        details += [[row["stage"], label, *(f"{row[key]:,.0f}" for key in (
            "nodes_per_step", "edges_per_step", "created_per_step")), *(f"{row[key]:.4f}" for
            key in ("s_per_step", "forward_s", "backward_s", "update_s", "free_s")),
            f"{row['peak_rss_kb'] / 1024:.1f} MB"] for label, row in (("before", b), ("after", a))]
    return block("engine", rows, **slots), block("engine_details", details, **slots)


def render_paired(paired):
    """The paired comparison of the training loop before and after issue 9."""
    rows = [[stage_label(row["stage"]), f"{row['old_median_ms']:.2f}",
             f"{row['new_median_ms']:.2f}", f"{row['ratio']:.3f}",
             "; ".join(", ".join(f"{ms:.2f}" for ms in row[key])
                       for key in ("old_ms_per_step", "new_ms_per_step")),
             f"{row['max_loss_difference']:.1e}" if row["max_loss_difference"] else "0"]
            for row in paired["stages"]]
    worst = max(paired["stages"], key=lambda row: row["ratio"])
    return block(
        "paired", rows, limit=f"{paired['limit']:.2f}", worst=f"{worst['ratio']:.3f}",
        stage=worst["stage"], over="" if worst["ratio"] <= paired["limit"] else ": over the limit",
        steps=paired["steps"], old_rev=paired["old_rev"], reps=paired["repetitions"],
        machine=stages.machine_line(paired["machine"]), load=f"{paired['load_avg'][0]:.1f}",
        command=paired["command"])


def render_first_run(results):
    """What a learner sees on the first run: stage 0's output at its defaults, cut, and stage
    5's samples, from the full runs of benchmarks/results.json."""
    outputs = {row["stage"]: row["output"].splitlines() for row in results["stages"]}
    lines = outputs[0]
    steps = [line for line in lines if line.startswith("step ")]
    shown = ([line for line in lines if line.startswith(("num ", "vocab "))] + steps[:2]
             + ["..."] + steps[-1:]
             + [line for line in lines if line.startswith(("train ", "val "))]
             + [line for line in lines if line.startswith("sample ")][:8] + ["..."])
    names = [line.split(": ", 1)[1] for line in outputs[5] if line.startswith("sample ")]
    return block("first_run", shown="\n".join(shown), names=", ".join(names[:12]))


def load_json(name):
    """benchmarks/NAME.json's contents."""
    return json.loads((BENCH / f"{name}.json").read_text(encoding="utf-8"))


def check_hashes(results, name="results"):
    """CourseError if results (the contents of results.json or seeds.json) measured scripts
    other than the current ones."""
    for row in results["stages"]:
        path = stages.stage_path(row["stage"])
        if stages.sha256(path) != row["sha256"]:
            raise CourseError(f"benchmarks/{name}.json measured another version of {path.name}: "
                              f"rerun {MEASURED[name]}")


def rendered_files():
    """{path: its text with every generated block rendered from the figures}."""
    data = {name: load_json(name) for name in ("results", "seeds", "engine", "paired",
                                               "reference")}
    results = data["results"]
    engine, engine_details = render_engine(data["engine"])
    concepts = "tools/templates/readme_concepts.md"
    blocks = {
        README: {"what you will see": render_first_run(results),
                 "course table": render_course_table(results, {
                     k: stages.diff_counts(k) for k in range(1, len(stages.STAGE_FILES))}),
                 "benchmarks": engine,
                 "what each concept buys": stages.fill_figures(
                     (stages.ROOT / concepts).read_text(encoding="utf-8"), concepts)},
        BENCH / "README.md": {
            "reference comparison": render_reference_table(data["reference"], results,
                                                           data["seeds"]),
            "engine details": engine_details,
            "paired": render_paired(data["paired"]),
            "profile": "```text\n" + (BENCH / "profile.txt").read_text(encoding="utf-8")
                       .rstrip("\n") + "\n```\n"},
    }
    files = {}
    for path, contents in blocks.items():
        files[path] = path.read_text(encoding="utf-8")
        for name, content in contents.items():
            files[path] = stages.replace_block(files[path], name, TOOL, content,
                                               str(path.relative_to(stages.ROOT)))
    return files


def update(check=False):
    """Rewrite the generated blocks; with check=True write nothing, and raise CourseError if a
    block is out of date or results.json or seeds.json measured other scripts (else a warning)."""
    for name in MEASURED:
        try:
            check_hashes(load_json(name), name)
        except CourseError as e:
            if check:
                raise
            print(f"warning: {e}", file=sys.stderr)
    stale = []
    for path, text in rendered_files().items():
        changed = stages.write_or_check(path, text, check, stale)
        print(f"{path.relative_to(stages.ROOT)}: "
              + ("up to date" if not changed else "out of date" if check else "updated"))
    if stale:
        raise CourseError(f"{stale[0].relative_to(stages.ROOT)}'s generated tables are out of "
                          f"date: run python {TOOL}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated block or the figures are stale")
    update(parser.parse_args().check)


if __name__ == "__main__":
    stages.run(main)
