"""Write the generated tables of README.md (the course table and the benchmark table) and of
benchmarks/README.md (the engine measurements in full and the profile).

Each goes between a pair of marker lines, and nothing outside them is touched. In README.md:

    <!-- BEGIN generated: course table (tools/readme_figures.py) -->
    <!-- END generated: course table -->
    <!-- BEGIN generated: benchmarks (tools/readme_figures.py) -->
    <!-- END generated: benchmarks -->
    <!-- BEGIN generated: what you will see (tools/readme_figures.py) -->
    <!-- END generated: what you will see -->
    <!-- BEGIN generated: what each concept buys (tools/readme_figures.py) -->
    <!-- END generated: what each concept buys -->

and in benchmarks/README.md the same with `reference comparison` (per-seed ranges stay out of
the README), `engine details`, `paired` and `profile`. The figures
come from benchmarks/results.json (`python tools/benchmark.py --full`), benchmarks/seeds.json
(`python tools/benchmark.py --seeds 1 2 3 4 5 6 7 8 9 10`), benchmarks/engine.json
(`python tools/benchmark.py --engine-compare`), benchmarks/paired.json (`python
tools/benchmark.py --paired`) and benchmarks/profile.txt (`python tools/benchmark.py --profile
5 --steps 10 > benchmarks/profile.txt`), benchmarks/experiments/results.json (`python
tools/experiments.py`, quoted through its quotes() into the prose of
tools/templates/readme_concepts.md, as the notebooks quote them); line counts of the stage diffs from tools/stages.py; the
GitHub repository of the Colab badges from tools/repo.py.

    python tools/readme_figures.py            # rewrite the generated blocks
    python tools/readme_figures.py --check    # write nothing; exit 1 if a block is out of date
                                              # or results.json / seeds.json /
                                              # paired.json measured other scripts

Standard library only.
"""
import argparse
import hashlib
import json
import sys
from pathlib import Path

import repo
import stages
from benchmark import machine_line

TOOL = "tools/readme_figures.py"
README = stages.ROOT / "README.md"
RESULTS = stages.ROOT / "benchmarks" / "results.json"
ENGINE = stages.ROOT / "benchmarks" / "engine.json"
SEEDS = stages.ROOT / "benchmarks" / "seeds.json"
PAIRED = stages.ROOT / "benchmarks" / "paired.json"
PAIRED_COMMAND = "python tools/benchmark.py --paired"
PAIRED_LIMIT = 1.10   # issue 9: per-step time within 10% of the scripts before it
SEEDS_COMMAND = "python tools/benchmark.py --seeds 1 2 3 4 5 6 7 8 9 10"
# The reference figures of issue 2: Karpathy's microgpt build-up at its defaults, 1,000 steps,
# on the canonical 32,033-name list, on this machine class (2 cores, Python 3.11):
# stage: (mean train loss of the last 50 steps, wall time in seconds).
REFERENCE = {0: (2.496, 0.2), 1: (2.492, 14), 2: (2.492, 213), 3: (2.370, 398),
             4: (2.364, 357), 5: (2.323, 356)}
REFERENCE_MARKERS = (f"<!-- BEGIN generated: reference comparison ({TOOL}) -->",
                     "<!-- END generated: reference comparison -->")
COURSE_MARKERS = (f"<!-- BEGIN generated: course table ({TOOL}) -->",
                  "<!-- END generated: course table -->")
BENCH_MARKERS = (f"<!-- BEGIN generated: benchmarks ({TOOL}) -->",
                 "<!-- END generated: benchmarks -->")
BENCH_README = stages.ROOT / "benchmarks" / "README.md"
PROFILE = stages.ROOT / "benchmarks" / "profile.txt"
PROFILE_COMMAND = "python tools/benchmark.py --profile 5 --steps 10 > benchmarks/profile.txt"
DETAILS_MARKERS = (f"<!-- BEGIN generated: engine details ({TOOL}) -->",
                   "<!-- END generated: engine details -->")
PROFILE_MARKERS = (f"<!-- BEGIN generated: profile ({TOOL}) -->",
                   "<!-- END generated: profile -->")
NUMBERS_MARKERS = (f"<!-- BEGIN generated: what each concept buys ({TOOL}) -->",
                   "<!-- END generated: what each concept buys -->")
NUMBERS_TEMPLATE = stages.ROOT / "tools" / "templates" / "readme_concepts.md"
FIRST_RUN_MARKERS = (f"<!-- BEGIN generated: what you will see ({TOOL}) -->",
                     "<!-- END generated: what you will see -->")
PAIRED_MARKERS = (f"<!-- BEGIN generated: paired ({TOOL}) -->",
                  "<!-- END generated: paired -->")


class Stale(Exception):
    """The README or the recorded figures do not match what is in the repository now."""


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
        "train loss (last 50) | run time (CPU) | notebook |",
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
            seconds(row["cpu_s"]),
            f"[{stem}.ipynb]({notebook}) {badge}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Each script run once at its defaults (`python trainN.py`); losses are in nats per "
        "character; run time: the CPU time of the whole run, start to exit (training, "
        "evaluation and sampling), which other programs running at the same time change less "
        "than wall time. Lines: non-blank lines of the script. Measured on "
        + machine_line(results["machine"])
        + f" by `python tools/benchmark.py --full`; `python {TOOL}` writes this table.")
    return "\n".join(lines) + "\n"


def spread(values):
    """'mean (min-max)' of a list of losses."""
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def render_reference_table(results, seeds):
    """Markdown of our figures next to the reference's: the default run (seed 42) and the
    spread of the last-50 train loss and the val loss over the seeds of seeds.json."""
    seed_list = seeds["seeds"]
    label = f"seeds {seed_list[0]}-{seed_list[-1]}" if seed_list == list(
        range(seed_list[0], seed_list[-1] + 1)) else "seeds " + ", ".join(map(str, seed_list))
    lines = [
        "| stage | reference: train loss (last 50) | ours, seed 42: train loss (last 50) | "
        f"ours, {label}: train loss (last 50), mean (min-max) | seeds within 0.01 of the "
        f"reference or better | ours, {label}: val loss, mean (min-max) | reference: wall time | "
        "ours, seed 42: CPU time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_stage = {row["stage"]: row for row in seeds["stages"]}
    for row in results["stages"]:
        k = row["stage"]
        ref_loss, ref_time = REFERENCE[k]
        runs = by_stage[k]["runs"]
        last50 = [run["train_loss_last50"] for run in runs]
        val = [run["val_loss"] for run in runs]
        within = sum(1 for loss in last50 if loss <= ref_loss + 0.01)
        cells = [
            f"{k} ({stages.CONCEPTS[k]})",
            f"{ref_loss:.3f}",
            f"{row['train_loss_last50']:.4f}",
            spread(last50),
            f"{within} of {len(runs)}",
            spread(val),
            seconds(ref_time),
            seconds(row["cpu_s"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "Reference: Karpathy's microgpt build-up at the same defaults, 1,000 steps, on the "
        "canonical 32,033-name list, on the same machine class (the figures of issue 2). Ours: "
        "each script at its defaults, with `--seed=S --num_samples=0` for the seeds, by "
        f"`python tools/benchmark.py --seeds {' '.join(map(str, seed_list))}` on "
        + machine_line(seeds["machine"]) + "; CPU time: the whole run, start to exit, "
        "training, evaluation and sampling included (seed 42, from the course table)."
        + kept_note(seeds))
    return "\n".join(lines) + "\n"


def kept_note(seeds):
    """A sentence naming the stages whose seed figures were kept from an earlier version of
    their script (benchmark.py --seeds ... --stages), or '' if every stage was measured."""
    kept = [row for row in seeds["stages"] if "measured_sha256" in row]
    if not kept:
        return ""
    numbers = ", ".join(str(row["stage"]) for row in kept)
    measured = ", ".join(str(row["stage"]) for row in seeds["stages"] if row not in kept)
    seed = kept[0]["confirmed_by_seed"]
    machine = kept[0].get("measured_on")
    on = f" on {machine}" if machine else ""
    plural = "s" if "," in measured else ""
    return (f" Only stage{plural} {measured} was measured by that command; the seed figures "
            f"of stages {numbers} were measured{on} on the scripts before issue 9's rewrite "
            f"and kept, because the current scripts reproduce their seed-{seed} run exactly "
            "(and their per-step losses, tests/test_figures.py).")


def render_benchmarks(engine):
    """Markdown of the before/after engine table from engine.json's contents."""
    before = engine["before"]
    after = engine["after"]
    lines = [
        "| stage | graph nodes per step, before -> after | time per step, before -> after | "
        "step speedup | full run CPU time, before -> after | full run speedup | "
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
            f"{seconds(fb['cpu_s'])} -> {seconds(fa['cpu_s'])}",
            f"{fb['cpu_s'] / fa['cpu_s']:.1f}x",
            f"{fb['peak_rss_kb'] / 1024:.0f} MB -> {fa['peak_rss_kb'] / 1024:.0f} MB",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Before: `{before['rev']}`, where `dot` is a chain of binary `*` and `+` nodes; after: "
        f"`{after['rev']}` (`{after['commit'][:7]}`), one `dot` node per sum of products. "
        f"Per step: the mean CPU time over the first {engine['steps']} training names of forward, "
        "backward, update and freeing the previous graph; graph nodes are the Values reachable "
        "from the loss. Full run: `python trainN.py` at its defaults, start to exit (training, "
        "evaluation and sampling), in CPU time, which other programs running at the same time "
        "change less than wall time; peak memory is its maximum resident set size. Measured on "
        + machine_line(engine["machine"])
        + " by `python tools/benchmark.py --engine-compare`; details in "
        "[benchmarks/README.md](benchmarks/README.md).")
    return "\n".join(lines) + "\n"


def render_engine_details(engine):
    """Markdown of the full before/after measurements, one row per stage and engine."""
    lines = [
        "| stage | engine | graph nodes / step | graph links / step | Values created / step | "
        "s / step | forward | backward | update | free graph | peak memory |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b, a in zip(engine["before"]["bench"], engine["after"]["bench"]):
        for label, row in (("before", b), ("after", a)):
            cells = [
                f"{row['stage']}",
                label,
                f"{row['nodes_per_step']:,.0f}",
                f"{row['edges_per_step']:,.0f}",
                f"{row['created_per_step']:,.0f}",
                f"{row['s_per_step']:.4f}",
                f"{row['forward_s']:.4f}",
                f"{row['backward_s']:.4f}",
                f"{row['update_s']:.4f}",
                f"{row['free_s']:.4f}",
                f"{row['peak_rss_kb'] / 1024:.1f} MB",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        f"Before: `{engine['before']['rev']}` (`{engine['before']['commit'][:7]}`); after: "
        f"`{engine['after']['rev']}` (`{engine['after']['commit'][:7]}`). Means over the first "
        f"{engine['steps']} training names of each stage at its default configuration, in CPU "
        "seconds, on "
        + machine_line(engine["machine"]) + ", by `python tools/benchmark.py --engine-compare`.")
    return "\n".join(lines) + "\n"


def render_paired(paired):
    """Markdown of the paired comparison of the training loop before and after issue 9."""
    lines = [
        f"| stage | before issue 9 (`{paired['old_rev']}`): ms / step | now: ms / step | "
        "now / before | runs (before; now), ms / step | largest per-step loss difference |",
        "|---:|---:|---:|---:|---|---:|",
    ]
    for row in paired["stages"]:
        runs = (", ".join(f"{ms:.2f}" for ms in row["old_ms_per_step"]) + "; "
                + ", ".join(f"{ms:.2f}" for ms in row["new_ms_per_step"]))
        cells = [
            f"{row['stage']} ({stages.CONCEPTS[row['stage']]})",
            f"{row['old_median_ms']:.2f}",
            f"{row['new_median_ms']:.2f}",
            f"{row['ratio']:.3f}",
            runs,
            f"{row['max_loss_difference']:.1e}" if row["max_loss_difference"] else "0",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    worst = max(paired["stages"], key=lambda row: row["ratio"])
    lines.append("")
    lines.append(
        f"Issue 9 allows now / before up to {PAIRED_LIMIT:.2f}; the largest here is "
        f"{worst['ratio']:.3f} (stage {worst['stage']}"
        + ("" if worst["ratio"] <= PAIRED_LIMIT else ": over the limit") + "). "
        f"Each stage's own training section at its defaults with `--num_steps={paired['steps']}`, "
        f"as committed at `{paired['old_rev']}` and now, {paired['repetitions']} runs each, one "
        "at a time, before and now alternately; a fresh process per run, its setup untimed, "
        "the training loop in CPU seconds; the medians are compared. Measured on "
        + machine_line(paired["machine"]) + f" (load average {paired['load_avg'][0]:.1f} at "
        f"the end: other programs were running) by `{PAIRED_COMMAND}`.")
    return "\n".join(lines) + "\n"


def render_numbers():
    """The README's "what each concept buys": the prose of tools/templates/readme_concepts.md
    with each {{exp:KEY}} replaced by its figure, as in the notebooks' prose."""
    import make_notebooks
    text = NUMBERS_TEMPLATE.read_text(encoding="utf-8")
    try:
        return make_notebooks.resolve_figures(text, "tools/templates/readme_concepts.md", set())
    except make_notebooks.BuildError as e:
        raise Stale(str(e)) from None


def render_first_run(results):
    """What a learner sees on the first run: stage 0's output at its defaults, cut, and stage
    5's samples, from the full runs of benchmarks/results.json."""
    by_stage = {row["stage"]: row for row in results["stages"]}
    lines = by_stage[0]["output"].splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    samples = [line for line in lines if line.startswith("sample ")]
    shown = ([line for line in lines if line.startswith(("num ", "vocab "))] + steps[:2]
             + ["..."] + steps[-1:] + [line for line in lines if line.startswith(("train ", "val "))]
             + samples[:8] + ["..."])
    names = [line.split(": ", 1)[1] for line in by_stage[5]["output"].splitlines()
             if line.startswith("sample ")]
    return ("```\n$ python train0_bigram.py\n" + "\n".join(shown) + "\n```\n\n"
            "Stage 0 counts which letter follows which; its names have the right letter pairs "
            "and little else. A progress line gives the mean loss since the line before, the "
            "time per step and the time left. Five files later, `python train5_adam.py` "
            "trains a complete GPT for the same 1,000 steps and samples, at its default "
            "temperature of 0.5 (safer than stage 0's plain sampling): "
            + ", ".join(names[:12]) + ".\n")


def render_profile(profile_text):
    """The profile (benchmarks/profile.txt) as a fenced block."""
    return "```text\n" + profile_text.rstrip("\n") + "\n```\n"


def replace_block(text, markers, content, name="README.md"):
    """text with the lines between the two marker lines replaced by content."""
    begin, end = markers
    lines = text.split("\n")
    if lines.count(begin) != 1 or lines.count(end) != 1:
        raise ValueError(f"{name} needs the marker line {begin!r} once, and {end!r} once")
    i = lines.index(begin)
    j = lines.index(end)
    if j < i:
        raise ValueError(f"{name} has {end!r} before {begin!r}")
    return "\n".join(lines[:i + 1]) + "\n" + content + "\n".join(lines[j:])


def load_json(path, how):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Stale(f"{path.relative_to(stages.ROOT)} is missing: run {how}") from None


def check_hashes(results, name="benchmarks/results.json",
                 how="python tools/benchmark.py --full"):
    """Raise Stale if results (the contents of results.json or seeds.json) measured scripts
    other than the current ones."""
    for row in results["stages"]:
        path = stages.stage_path(row["stage"])
        current = hashlib.sha256(path.read_bytes()).hexdigest()
        if current != row["sha256"]:
            raise Stale(f"{name} measured another version of {path.name}: rerun {how}")


def check_paired_hashes(paired):
    """Raise Stale if paired (paired.json's contents) timed other scripts than the current."""
    current = {"stages": [{"stage": row["stage"], "sha256": row["new_sha256"]}
                          for row in paired["stages"]]}
    check_hashes(current, "benchmarks/paired.json", PAIRED_COMMAND)


def check_all_hashes():
    check_hashes(load_json(RESULTS, "python tools/benchmark.py --full"))
    check_hashes(load_json(SEEDS, SEEDS_COMMAND), "benchmarks/seeds.json", SEEDS_COMMAND)
    check_paired_hashes(load_json(PAIRED, PAIRED_COMMAND))


def rendered_files():
    """{path: (current text, text with every generated block rendered from the figures)}."""
    results = load_json(RESULTS, "python tools/benchmark.py --full")
    engine = load_json(ENGINE, "python tools/benchmark.py --engine-compare")
    seeds = load_json(SEEDS, SEEDS_COMMAND)
    paired = load_json(PAIRED, PAIRED_COMMAND)
    try:
        profile = PROFILE.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Stale(f"benchmarks/profile.txt is missing: run {PROFILE_COMMAND}") from None
    diff_counts = {k: stages.diff_counts(k) for k in range(1, len(stages.STAGE_FILES))}
    blocks = {
        README: [(FIRST_RUN_MARKERS, render_first_run(results)),
                 (COURSE_MARKERS, render_course_table(results, diff_counts)),
                 (BENCH_MARKERS, render_benchmarks(engine)),
                 (NUMBERS_MARKERS, render_numbers())],
        BENCH_README: [(REFERENCE_MARKERS, render_reference_table(results, seeds)),
                       (DETAILS_MARKERS, render_engine_details(engine)),
                       (PAIRED_MARKERS, render_paired(paired)),
                       (PROFILE_MARKERS, render_profile(profile))],
    }
    files = {}
    for path, path_blocks in blocks.items():
        name = str(path.relative_to(stages.ROOT))
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise Stale(f"{name} is missing") from None
        new_text = text
        for markers, content in path_blocks:
            new_text = replace_block(new_text, markers, content, name)
        files[path] = (text, new_text)
    return files


def check():
    """Raise Stale unless the generated blocks and results.json are up to date."""
    check_all_hashes()
    for path, (text, new_text) in rendered_files().items():
        if new_text != text:
            name = path.relative_to(stages.ROOT)
            raise Stale(f"{name}'s generated tables are out of date: run python {TOOL}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = lambda message: sys.exit(f"error: {message} (see --help)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a generated block or the figures are stale")
    opts = parser.parse_args()
    try:
        if opts.check:
            check()
            print("the generated tables are up to date")
            return
        try:
            check_all_hashes()
        except Stale as e:
            print(f"warning: {e}", file=sys.stderr)
        for path, (text, new_text) in rendered_files().items():
            name = path.relative_to(stages.ROOT)
            if new_text != text:
                path.write_text(new_text, encoding="utf-8")
                print(f"updated {name}")
            else:
                print(f"{name} already up to date")
    except (Stale, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
