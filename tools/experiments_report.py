"""The experiments of tools/experiments.py and what their results say: the seeds, budgets and
ablations (tools/templates/ablations.toml), the statistics of results.json, and from them the
generated files: figures.json (what prose quotes), README.md (the text of
tools/templates/experiments_readme.md), the PNG figures and the ablations' diffs. It runs and
writes nothing; tools/experiments.py does. Standard library, plus matplotlib for the figures.
"""
import difflib
import io
import json
import math
import tomllib
from collections import namedtuple

import stages

TOOL = "tools/experiments.py"
OUT_DIR = stages.ROOT / "benchmarks" / "experiments"
RESULTS = OUT_DIR / "results.json"
TEMPLATE = "experiments_readme.md"
SEEDS = [1, 2, 3]
SHORT = 1000   # every stage's default num_steps
LONG = 10000
ABLATION_LONG = 3000   # every ablation at 3,000, then at LONG as far as time allows
FULL_STAGE = 5
NUM_SAMPLES = 50
Job = namedtuple("Job", "group name stage steps seed")   # group: ladder, ablation or demo
# edits: (old, new) text pairs; stage: the script changed, compared with that stage's ladder runs
Ablation = namedtuple("Ablation", "name title edits settings stage")
Stats = namedtuple("Stats", "n mean std min max")

_DATA = tomllib.loads((stages.TEMPLATES / "ablations.toml").read_text(encoding="utf-8"))
_MADE = {group: [Ablation(a["name"], a["title"],
                          [tuple(_DATA["edits"][e]) for e in a.get("edits", [])],
                          extra + a.get("settings", []), a.get("stage", stage))
                 for a in _DATA[group]]
         for group, stage, extra in (("full", FULL_STAGE, []), ("stage3", 3, []),
                                     ("demo", 3, _DATA["demo_settings"]))}
FULL_ABLATIONS = _MADE["full"]   # most informative first: plan() runs them in this order
STAGE3_ABLATIONS = _MADE["stage3"]
ABLATIONS = FULL_ABLATIONS + STAGE3_ABLATIONS
DEMOS = _MADE["demo"]   # the stage itself, and attention on the current position only
DEMO_STEPS = _DATA["demo_steps"]
DEMO_SETTINGS = _DATA["demo_settings"]
FACTORIAL = _DATA["factorial"]   # stage 3's attention x position embeddings, also at LONG
FACTORIAL_TITLES = _DATA["factorial_titles"]   # its table's rows: the stage, then those three
ABLATION_BY_NAME = {a.name: a for a in ABLATIONS + DEMOS}


def patch(text, edits):
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise stages.CourseError(f"ablation edit {old.strip()!r} matches {count} times, "
                                     "not once")
        text = text.replace(old, new)
    return text


def job_of(run):
    """The Job a run of results.json measured."""
    return Job(run["group"], run["name"], run["stage"], run["num_steps"], run["seed"])


def stats(values):
    """n, mean, sample standard deviation (n - 1; 0 for one value), min, max."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return Stats(n, mean, std, min(values), max(values))


def val_by_seed(runs, group, name, steps):
    """{seed: val loss} of the finished runs of one configuration."""
    return {r["seed"]: r["val_loss"] for r in runs if r["group"] == group and r["name"] == name
            and r["num_steps"] == steps and r["val_loss"] is not None}


def val_stats(runs, group, name, steps):
    """Stats of the val losses of one configuration (None: no finished run)."""
    values = val_by_seed(runs, group, name, steps)
    return stats(list(values.values())) if values else None


def ladder_runs(runs, stage, steps):
    return [r for r in runs if r["group"] == "ladder" and r["stage"] == stage
            and r["num_steps"] == steps and r["val_loss"] is not None]


def comparison(runs, name, steps):
    """(ablated Stats, full-model Stats, Stats of the per-seed differences, verdict: whether the
    seed ranges do not overlap) or None."""
    demo = name in (d.name for d in DEMOS)
    ablated = val_by_seed(runs, "demo" if demo else "ablation", name, steps)
    full = (val_by_seed(runs, "demo", DEMOS[0].name, steps) if demo else
            val_by_seed(runs, "ladder", f"stage{ABLATION_BY_NAME[name].stage}", steps))
    paired = sorted(set(ablated) & set(full))
    if not paired or len(paired) < len(full):   # a difference pairs every seed of the stage
        return None
    a, f = stats(list(ablated.values())), stats(list(full.values()))
    verdict = ("yes: every seed worse" if a.min > f.max else "yes: every seed better"
               if a.max < f.min else "no: the seed ranges overlap")
    return a, f, stats([ablated[s] - full[s] for s in paired]), verdict


def probed(runs):
    """{seed: run} of the attention demo's runs of stage 3 itself, with what the probe printed."""
    return {r["seed"]: r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")}


def demo_floor(length):
    """A model that copies perfectly still guesses the first half: `length` uniform guesses
    among 26 letters, over the 2 * length + 1 predictions of a string (the end included)."""
    return length * math.log(26) / (2 * length + 1)


def quotes(results):
    """{key: text} of every figure prose may quote, e.g. 'ladder.s3.1000' (mean over seeds),
    '.choices' (e to that), '.spread'; 'samples.s5.1000'; 'ablation.no_position.10000' (the
    paired difference to its stage), '.val'; 'demo.max_weight', '.min'."""
    runs, out = results["runs"], {}
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({r["num_steps"] for r in runs if r["stage"] == stage}):
            key, s = f"ladder.s{stage}.{steps}", val_stats(runs, "ladder", f"stage{stage}", steps)
            if s:
                seeds = f"{s.n} seed" + ("s" if s.n != 1 else "")
                out |= {key: f"{s.mean:.3f} nats", f"{key}.choices": f"{math.exp(s.mean):.1f}",
                        f"{key}.spread": f"± {s.std:.3f} over {seeds}"}
            mine = ladder_runs(runs, stage, steps)
            if n := sum(len(r["samples"]) for r in mine):
                share = sum(r["samples_in_train"] for r in mine) / n
                out[f"samples.s{stage}.{steps}"] = f"{share:.0%} of {n} samples are training names"
    for a in ABLATIONS + DEMOS[1:]:
        for steps in sorted({r["num_steps"] for r in runs
                             if r["group"] != "ladder" and r["name"] == a.name}):
            if found := comparison(runs, a.name, steps):
                d = found[2]
                words = ("worse on every seed" if d.min > 0 else "better on every seed"
                         if d.max < 0 else "within noise: better on some seeds, worse on others")
                out[f"ablation.{a.name}.{steps}.val"] = f"{found[0].mean:.3f} nats"
                out[f"ablation.{a.name}.{steps}"] = (f"{round(d.mean, 3) + 0.0:+.3f} nats, "
                                                     f"{words}")   # + 0.0: no '-0.000'
    if demo := list(probed(runs).values()):
        for field in ("max_weight", "on_match"):
            s = stats([r["attention"][field] for r in demo])
            out |= {f"demo.{field}": f"{s.mean:.2f}", f"demo.{field}.min": f"{s.min:.2f}"}
        length = demo[0]["attention"]["length"]
        out |= {"demo.floor": f"{demo_floor(length):.3f} nats", "demo.length": str(length)}
        for d in DEMOS:
            values = val_by_seed(runs, "demo", d.name, DEMO_STEPS)
            if set(values) == set(SEEDS):
                out[f"demo.val.{d.name}"] = f"{stats(list(values.values())).mean:.3f} nats"
    return out


def figures_json(results, jobs):
    """The text of figures.json, which stages.fill_figures reads: the budgets, the quotes, and
    the keys the jobs measure once they have all run but that are not measured yet."""
    planned = set()
    for job in jobs:
        if job.group == "ladder":
            key = f"s{job.stage}.{job.steps}"
            planned |= {f"ladder.{key}", f"ladder.{key}.choices", f"ladder.{key}.spread",
                        f"samples.{key}"}
        else:
            planned |= {f"ablation.{job.name}.{job.steps}", f"ablation.{job.name}.{job.steps}.val"}
        if job.group == "demo":
            planned |= {f"demo.{field}" for field in ("max_weight", "max_weight.min", "on_match",
                                                      "on_match.min", "floor", "length",
                                                      f"val.{job.name}")}
    quoted = quotes(results)
    data = {"generated": f"by {TOOL} --render from results.json; do not edit: rerun the tool",
            "budgets": {"SHORT": SHORT, "LONG": LONG, "ABLATION_LONG": ABLATION_LONG},
            "figures": quoted, "not_measured": sorted(planned - set(quoted))}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


FORMATS = {   # a table's column spec: one character per column (a str value is shown as it is)
    ".": str,
    ",": "{:,}".format,   # a number of steps
    "4": "{:.4f}".format,   # a loss or a weight
    "v": lambda s: f"{s.mean:.4f} ± {s.std:.4f} ({s.min:.4f}–{s.max:.4f})" if s
    else "not measured",   # the Stats of val losses
    "d": lambda d: f"{d.mean:+.4f} ({d.min:+.4f} to {d.max:+.4f})" if d
    else "-",   # the Stats of paired differences
}


def table(rows, spec):
    """The lines of a Markdown table's body: each row's values formatted by the column spec."""
    return "\n".join("| " + " | ".join(v if isinstance(v, str) else FORMATS[f](v)
                                       for f, v in zip(spec, row)) + " |" for row in rows)


def label(name):
    """'stage 3' for a ladder name ('stage3'), the title of an ablation."""
    return ABLATION_BY_NAME[name].title if name in ABLATION_BY_NAME else name.replace(
        "stage", "stage ")


def ladder_table(runs, jobs, num_train):
    def cell(stage, steps):
        if stage == 2 and steps == LONG:   # plan() does not run it
            return "not run: the same as stage 1 †"
        s = val_stats(runs, "ladder", f"stage{stage}", steps)
        planned = Job("ladder", f"stage{stage}", stage, steps, SEEDS[0]) in jobs
        return s if s or planned else "-"   # None: not measured
    return table([(stage, f"[{script}](../../{script})", stages.CONCEPTS[stage],
                   *(cell(stage, steps) for steps in (SHORT, LONG, num_train)))
                  for stage, script in enumerate(stages.STAGE_FILES)], "...vvv")


def ablation_table(runs, jobs):
    rows = [(stage, "unchanged", "-", steps, val_stats(runs, "ladder", f"stage{stage}", steps),
             "-", "-") for stage in sorted({a.stage for a in ABLATIONS}, reverse=True)
            for steps in sorted({j.steps for j in jobs
                                 if j.group == "ablation" and j.stage == stage})]
    for a in ABLATIONS:
        change = " ".join([f"[diff](ablations/{a.name}.diff)"] * bool(a.edits)
                          + [f"`{s}`" for s in a.settings])
        for steps in sorted({j.steps for j in jobs if j.name == a.name}):
            found = comparison(runs, a.name, steps)
            errors = [f"failed: {r['error']}" for r in runs if r["name"] == a.name
                      and r["num_steps"] == steps and r.get("error")]
            cells = (found[0], found[2], found[3]) if found else ((errors or [None])[0], "-", "-")
            rows.append((a.stage, a.title, change, steps, *cells))
    return table(rows, "...,vd.")


def factorial_table(runs):
    """The 2 x 2 of stage 3: attention beyond the current position x position embeddings."""
    rows = []
    for steps in (SHORT, LONG):
        for name, title in FACTORIAL_TITLES.items():
            group = "ladder" if name == "stage3" else "ablation"
            found = comparison(runs, name, steps) if group == "ablation" else None
            rows.append((steps, title, val_stats(runs, group, name, steps), found and found[2]))
        mlp = (val_stats(runs, "ladder", "stage2", steps)
               or val_stats(runs, "ladder", "stage1", steps))
        rows.append((steps, "stages 1 and 2 (the MLP on the current letter)", mlp, None))
    return table(rows, ",.vd")


def demo_table(runs):
    """The attention demo, seed by seed: stage 3 on strings written twice."""
    full = probed(runs)
    current = val_by_seed(runs, "demo", DEMOS[1].name, DEMO_STEPS)
    return table([(seed, full[seed]["val_loss"], current[seed],
                   full[seed]["attention"]["max_weight"], full[seed]["attention"]["on_match"])
                  if seed in full and seed in current else
                  (seed, "not measured", "-", "-", "-") for seed in SEEDS], ".4444")


def samples_table(runs, jobs):
    rows = []
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({j.steps for j in jobs if j.group == "ladder" and j.stage == stage}):
            mine = ladder_runs(runs, stage, steps)
            if n := sum(len(r["samples"]) for r in mine):
                first = [r for r in mine if r["seed"] == SEEDS[0]] or mine
                in_train, in_data = (sum(r[f"samples_{field}"] for r in mine)
                                     for field in ("in_train", "in_data"))
                rows.append((stage, steps, n, len({s for r in mine for s in r["samples"]}),
                             f"{in_train / n:.0%} ({in_train})", f"{in_data / n:.0%} ({in_data})",
                             ", ".join(s or "(empty)" for s in first[0]["samples"][:6])))
    return table(rows, ".,.....")


def runtime_table(runs):
    walls = {}
    for r in runs:
        walls.setdefault((r["name"], r["num_steps"]), []).append(r["wall_s"])
    return table([(label(name), steps, s.n, f"{s.mean:.1f} ({s.min:.1f}–{s.max:.1f})")
                  for (name, steps), s in ((key, stats(v)) for key, v in walls.items())], ".,..")


def notes(runs, jobs):
    """The paragraphs under the ladder (its † cell), the ablations and the demo ('' when they do
    not apply), and the list of the jobs not measured yet."""
    one, two = (val_by_seed(runs, "ladder", f"stage{k}", SHORT) for k in (1, 2))
    same = ", ".join(str(s) for s in sorted(one) if s in two and one[s] == two[s])
    out = {"sgd_note": "", "demo_note": "", "ladder_note": stages.template(
        TEMPLATE, "ladder_note", seeds=same or "none", long=f"{LONG:,}")}
    sgd, four = val_by_seed(runs, "ablation", "sgd", SHORT), val_by_seed(runs, "ladder",
                                                                         "stage4", SHORT)
    if both := sorted(set(sgd) & set(four)):
        gap = max(abs(sgd[s] - four[s]) for s in both)
        out["sgd_note"] = stages.template(
            TEMPLATE, "sgd_note", short=f"{SHORT:,}", long=f"{LONG:,}", seeds=", ".join(
                map(str, both)), same="equal to stage 4's" if gap == 0 else
            f"within {gap:.4f} of stage 4's")
    if demo := list(probed(runs).values()):
        length = demo[0]["attention"]["length"]
        out["demo_note"] = stages.template(
            TEMPLATE, "demo_note", length=length, predictions=2 * length + 1,
            floor=f"{demo_floor(length):.4f}", twice=f"{2 * demo_floor(length):.4f}")
    done, missing = set(map(job_of, runs)), {}
    for j in jobs:
        if j not in done:
            missing.setdefault((j.name, j.steps), []).append(str(j.seed))
    out["missing"] = stages.template(TEMPLATE, "missing", jobs="\n".join(
        f"- {label(name)} at {steps:,} steps, seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(seeds)}" for (name, steps), seeds in missing.items())
    ) if missing else "Every job of the plan was measured."
    return out


def readme(results, jobs, num_train):
    runs = results["runs"]
    return stages.template(
        TEMPLATE, "page", seeds=", ".join(map(str, SEEDS)), num_samples=NUM_SAMPLES,
        seed=SEEDS[0], machine=stages.machine_line(results["machine"]), short=f"{SHORT:,}",
        long=f"{LONG:,}", epoch=f"{num_train:,}", ladder_rows=ladder_table(runs, jobs, num_train),
        ablation_rows=ablation_table(runs, jobs), factorial_rows=factorial_table(runs),
        demo_steps=f"{DEMO_STEPS:,}", demo_settings=" ".join(DEMO_SETTINGS),
        demo_rows=demo_table(runs), sample_rows=samples_table(runs, jobs),
        runtime_rows=runtime_table(runs), runs=len(runs),
        hours=f"{sum(r['wall_s'] for r in runs) / 3600:.1f}", **notes(runs, jobs)) + "\n"


def ablation_diff(ablation):
    """Unified diff of the stage script to its ablated copy, under a generated-file line."""
    name = stages.STAGE_FILES[ablation.stage]
    old = stages.read_stage(ablation.stage)
    diff = difflib.unified_diff(stages.split_lines(old), stages.split_lines(
        patch(old, ablation.edits)), f"a/{name}", f"b/{name}", n=3)
    run_with = f", run with {' '.join(ablation.settings)}" if ablation.settings else ""
    head = f"# generated by {TOOL}: the ablation '{ablation.title}'{run_with}; do not edit\n"
    return head + "".join(diff)


def error_bars(ax, points, horizontal=False, **style):
    """[(position, Stats)] drawn as their means with bars to their min and max."""
    if points:
        places, means = [p for p, _ in points], [s.mean for _, s in points]
        bars = [[s.mean - s.min for _, s in points], [s.max - s.mean for _, s in points]]
        if horizontal:
            ax.errorbar(means, places, xerr=bars, capsize=3, **style)
        else:
            ax.errorbar(places, means, yerr=bars, capsize=3, **style)


def ladder_figure(runs, jobs, num_train, plt):
    """Val loss by stage, one series per budget, the seed range as error bars."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for steps, name, marker, offset, color in (
            (SHORT, f"{SHORT:,} steps", "o", -0.15, "C0"),
            (LONG, f"{LONG:,} steps", "s", 0.0, "C1"),
            (num_train, f"one epoch ({num_train:,} steps)", "^", 0.15, "C2")):
        error_bars(ax, [(stage + offset, s) for stage in range(len(stages.STAGE_FILES))
                        if (s := val_stats(runs, "ladder", f"stage{stage}", steps))],
                   fmt=marker, label=name, color=color)
    ax.set_xticks(list(stages.CONCEPTS), [f"{k}\n{c}" for k, c in stages.CONCEPTS.items()],
                  fontsize=7)
    ax.set(xlabel="stage", ylabel="val loss (nats per character)",
           title=f"Val loss by stage and budget: mean, bars = min-max over {len(SEEDS)} seeds")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def ablations_figure(runs, jobs, num_train, plt):
    """Each full-model ablation's paired difference to stage 5, one series per budget."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    budgets = sorted({j.steps for j in jobs if j.group == "ablation" and j.stage == FULL_STAGE})
    width = 0.8 / len(budgets)
    for b, steps in enumerate(budgets):
        found = [(i, comparison(runs, a.name, steps)) for i, a in enumerate(FULL_ABLATIONS)]
        error_bars(ax, [(i - 0.4 + width * (b + 0.5), c[2]) for i, c in found if c], True,
                   fmt="os^"[b % 3], label=f"{steps:,} steps",
                   color={SHORT: "C0", LONG: "C1"}.get(steps, "C2"))   # as in the ladder
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(FULL_ABLATIONS)), [a.title.split(" (")[0] for a in FULL_ABLATIONS],
                  fontsize=8)
    ax.set_ylim(len(FULL_ABLATIONS) - 0.5, -0.5)   # the first ablation on top
    ax.set(xlabel="val loss, ablated minus full model (nats per character)",
           title="Ablations of stage 5: mean difference, bars = per-seed range")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def demo_figure(runs, jobs, num_train, plt):
    """Left: the attention weights of the first seed's stage 3, mean over the held-out strings;
    right: val loss per seed, with attention and with the current position only."""
    run = probed(runs)[min(probed(runs))]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2),
                                      gridspec_kw={"width_ratios": [1.1, 1]})
    grid = [row[:k + 1] + [math.nan] * (len(row) - k - 1)
            for k, row in enumerate(run["attention"]["grid"])]
    length = run["attention"]["length"]
    labels = [f"{k}:{t}" for k, t in enumerate(["BOS"] + [f"x{k + 1}" for k in range(length)]
                                               + [f"x{k + 1}'" for k in range(length)])]
    image = left.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    left.set_xticks(range(len(labels)), labels, fontsize=8)
    left.set_yticks(range(len(labels)), labels, fontsize=8)
    left.set(xlabel="key: the position attended to",
             ylabel="query: the position predicting the next letter")
    left.set_title(f"Stage 3 on 'abcabc' strings (seed {run['seed']}): attention weights",
                   fontsize=9)
    fig.colorbar(image, ax=left, label="weight, mean over 300 strings")
    seeds = sorted({r["seed"] for r in runs if r["group"] == "demo"})
    for offset, demo, color, name in ((-0.2, DEMOS[0], "C0", "attention"),
                                      (0.2, DEMOS[1], "C3", "current position only")):
        values = val_by_seed(runs, "demo", demo.name, DEMO_STEPS)
        right.bar([k + offset for k, s in enumerate(seeds) if s in values],
                  [values[s] for s in seeds if s in values], width=0.4, color=color, label=name)
    for guessed, color, style, name in ((1, "black", "--", "perfect copy of the second half"),
                                        (2, "gray", ":", "no copy: every letter guessed")):
        right.axhline(guessed * demo_floor(length), color=color, ls=style, lw=0.8, label=name)
    right.set_xticks(range(len(seeds)), [f"seed {s}" for s in seeds])
    right.set_ylabel("val loss (nats per character)")
    right.set_title(f"Val loss after {DEMO_STEPS:,} steps", fontsize=9)
    right.legend(fontsize=7, loc="lower right")
    return fig


def rendered(results, jobs, num_train):
    """{path: bytes} of every generated file but results.json."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    files = {stages.FIGURES_FILE: figures_json(results, jobs),
             OUT_DIR / "README.md": readme(results, jobs, num_train)}
    files |= {OUT_DIR / "ablations" / f"{a.name}.diff": ablation_diff(a)
              for a in ABLATIONS if a.edits}
    files = {path: text.encode("utf-8") for path, text in files.items()}
    drawn = [("ladder.png", ladder_figure), ("ablations.png", ablations_figure)]
    if probed(results["runs"]):
        drawn.append(("attention_demo.png", demo_figure))
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        for name, draw in drawn:
            fig = draw(results["runs"], jobs, num_train, plt)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
            plt.close(fig)
            files[OUT_DIR / name] = buf.getvalue()
    return files
