"""The experiments of tools/experiments.py, their definitions and what their results say: the
seeds, budgets and ablations (tools/templates/ablations.toml), the statistics of results.json,
the figures that prose quotes (figures.json), the README's tables (the text of
tools/templates/experiments_readme.md) and the PNG figures. A module of tools/experiments.py,
which runs the jobs and writes the files: this one runs and writes nothing. Standard library,
plus matplotlib for the figures.
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
README = OUT_DIR / "README.md"
LADDER_PNG = OUT_DIR / "ladder.png"
ABLATIONS_PNG = OUT_DIR / "ablations.png"
DEMO_PNG = OUT_DIR / "attention_demo.png"
DIFF_DIR = OUT_DIR / "ablations"
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


def read_ablations():
    """(the data of tools/templates/ablations.toml, {group: [Ablation]})."""
    data = tomllib.loads((stages.TEMPLATES / "ablations.toml").read_text(encoding="utf-8"))
    made = {}
    for group, stage, settings in (("full", FULL_STAGE, []), ("stage3", 3, []),
                                   ("demo", 3, data["demo_settings"])):
        made[group] = [Ablation(a["name"], a["title"],
                                [tuple(data["edits"][e]) for e in a.get("edits", [])],
                                settings + a.get("settings", []), a.get("stage", stage))
                       for a in data[group]]
    return data, made


_DATA, _MADE = read_ablations()
FULL_ABLATIONS = _MADE["full"]   # most informative first: plan() runs them in this order
STAGE3_ABLATIONS = _MADE["stage3"]
ABLATIONS = FULL_ABLATIONS + STAGE3_ABLATIONS
DEMOS = _MADE["demo"]   # the stage itself, and attention on the current position only
DEMO_STEPS = _DATA["demo_steps"]
DEMO_SETTINGS = _DATA["demo_settings"]
FACTORIAL = _DATA["factorial"]   # stage 3's attention x position embeddings, also at LONG
ABLATION_BY_NAME = {a.name: a for a in ABLATIONS + DEMOS}


def patch(text, edits):
    """text with each (old, new) edit applied; each old must occur exactly once."""
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise stages.CourseError(f"ablation edit {old.strip()!r} matches {count} times, "
                                     "not once")
        text = text.replace(old, new)
    return text


def job_key(job):
    return (job.group, job.name, job.steps, job.seed)


def record_key(run):
    return (run["group"], run["name"], run["num_steps"], run["seed"])


def planned_keys(jobs):
    """The keys of figures.json that the jobs measure once they have all run."""
    keys = set()
    for job in jobs:
        if job.group == "ladder":
            keys |= {f"ladder.s{job.stage}.{job.steps}{field}"
                     for field in ("", ".choices", ".spread")}
            keys.add(f"samples.s{job.stage}.{job.steps}")
            continue
        if job.group == "demo":
            keys |= {f"demo.{field}" for field in ("max_weight", "max_weight.min", "on_match",
                                                   "on_match.min", "floor", "length",
                                                   f"val.{job.name}")}
        keys |= {f"ablation.{job.name}.{job.steps}", f"ablation.{job.name}.{job.steps}.val"}
    return keys


# ---------------------------------------------------------------- statistics
Stats = namedtuple("Stats", "n mean std min max")


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


def ladder_runs(runs, stage, steps):
    """The finished ladder runs of a stage at a budget."""
    return [r for r in runs if r["group"] == "ladder" and r["stage"] == stage
            and r["num_steps"] == steps and r["val_loss"] is not None]


def comparison(runs, name, steps):
    """(ablated Stats, full-model Stats, per-seed differences Stats, verdict) or None.
    Differences pair the seeds: same seed, same data order. The verdict says whether the
    ablation's seed range and the full model's do not overlap."""
    if name in (demo.name for demo in DEMOS):
        ablated = val_by_seed(runs, "demo", name, steps)
        full = val_by_seed(runs, "demo", DEMOS[0].name, steps)
    else:
        ablated = val_by_seed(runs, "ablation", name, steps)
        full = val_by_seed(runs, "ladder", f"stage{ABLATION_BY_NAME[name].stage}", steps)
    paired = sorted(set(ablated) & set(full))
    if not paired or len(paired) < len(full):   # a difference pairs every seed of the stage
        return None
    a = stats(list(ablated.values()))
    f = stats(list(full.values()))
    d = stats([ablated[s] - full[s] for s in paired])
    if a.min > f.max:
        verdict = "yes: every seed worse"
    elif a.max < f.min:
        verdict = "yes: every seed better"
    else:
        verdict = "no: the seed ranges overlap"
    return a, f, d, verdict


def ladder_figures(runs):
    """The ladder's and the samples' part of figures()."""
    out = {}
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({r["num_steps"] for r in runs if r["stage"] == stage}):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            if values:
                for field, value in stats(list(values.values()))._asdict().items():
                    out[f"ladder.s{stage}.{steps}.{field}"] = value
            mine = ladder_runs(runs, stage, steps)
            num_samples = sum(len(r["samples"]) for r in mine)
            if num_samples:
                out[f"samples.s{stage}.{steps}.n"] = num_samples
                for field in ("in_train", "in_data"):
                    count = sum(r[f"samples_{field}"] for r in mine)
                    out[f"samples.s{stage}.{steps}.{field}"] = count / num_samples
    return out


def figures(results):
    """Flat {name: number} of every figure the README tables show, e.g. 'ladder.s3.1000.mean',
    'ablation.attention_current.3000.diff', 'samples.s5.1000.in_train' (a share, 0-1)."""
    runs = results["runs"]
    out = ladder_figures(runs)
    for a in ABLATIONS + DEMOS[1:]:
        for steps in sorted({r["num_steps"] for r in runs
                             if r["group"] != "ladder" and r["name"] == a.name}):
            found = comparison(runs, a.name, steps)
            if found:
                ablated, _, diff, verdict = found
                key = f"ablation.{a.name}.{steps}"
                for field, value in ablated._asdict().items():
                    out[f"{key}.{field}"] = value
                out[f"{key}.diff"] = diff.mean
                out[f"{key}.diff_min"] = diff.min
                out[f"{key}.diff_max"] = diff.max
                out[f"{key}.exceeds_spread"] = verdict.startswith("yes")
    demo = [r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")]
    if demo:
        for field in ("max_weight", "on_match"):
            values = stats([r["attention"][field] for r in demo])
            out[f"demo.{field}"] = values.mean
            out[f"demo.{field}.min"] = values.min
        length = demo[0]["attention"]["length"]
        # a model that copies perfectly still guesses the first half: length uniform guesses
        # among 26 letters, over the 2 * length + 1 predictions of a string (the end included)
        out["demo.floor"] = length * math.log(26) / (2 * length + 1)
        out["demo.length"] = length
        for demo_run in DEMOS:
            values = val_by_seed(runs, "demo", demo_run.name, DEMO_STEPS)
            if set(values) == set(SEEDS):
                out[f"demo.val.{demo_run.name}"] = stats(list(values.values())).mean
    return out


def seeds_text(n):
    return f"{n} seed" + ("s" if n != 1 else "")


def every_seed(diff_min, diff_max):
    """What the paired differences of an ablation say, in words."""
    if diff_min > 0:
        return "worse on every seed"
    if diff_max < 0:
        return "better on every seed"
    return "within noise: better on some seeds, worse on others"


def quotes(results):
    """{key: text} for prose, in plain figures (README and notebooks explain once how they are
    measured): 'ladder.s3.1000' -> '2.424 nats' (the mean over seeds), 'ladder.s3.1000.choices'
    -> '11.3' (e to the loss: the effective number of choices per letter),
    'ladder.s3.1000.spread' -> '± 0.006 over 3 seeds', 'ablation.no_position.10000' -> '+0.026
    nats, worse on every seed' (the paired difference to the stage it changes),
    'ablation.no_position.10000.val' -> its val loss, 'samples.s5.1000' -> '33% of 150 samples
    are training names', 'demo.max_weight' -> '0.93' (min over seeds: '.min')."""
    fig = figures(results)
    out = {}
    for key in fig:
        base = key.rsplit(".", 1)[0]
        if key.startswith("ladder.") and key.endswith(".mean"):
            out[base] = f"{fig[key]:.3f} nats"
            out[base + ".choices"] = f"{math.exp(fig[key]):.1f}"
            spread = f"{fig[base + '.std']:.3f} over {seeds_text(fig[base + '.n'])}"
            out[base + ".spread"] = f"± {spread}"
        elif key.startswith("ablation.") and key.endswith(".diff"):
            out[base + ".val"] = f"{fig[base + '.mean']:.3f} nats"
            out[base] = (f"{round(fig[key], 3) + 0.0:+.3f} nats, "   # + 0.0: no '-0.000'
                         f"{every_seed(fig[base + '.diff_min'], fig[base + '.diff_max'])}")
        elif key.startswith("samples.") and key.endswith(".in_train"):
            base = key[:-len(".in_train")]
            out[base] = (f"{fig[key]:.0%} of {fig[base + '.n']} samples are training names")
        elif key.startswith(("demo.val.", "demo.floor")):
            out[key] = f"{fig[key]:.3f} nats"
        elif key.startswith("demo."):
            out[key] = f"{fig[key]:.2f}" if isinstance(fig[key], float) else str(fig[key])
    return out


def figures_json(results, jobs):
    """The text of figures.json: what stages.fill_figures reads."""
    quoted = quotes(results)
    data = {"generated": f"by {TOOL} --render from results.json; do not edit: rerun the tool",
            "budgets": {"SHORT": SHORT, "LONG": LONG, "ABLATION_LONG": ABLATION_LONG},
            "figures": quoted, "not_measured": sorted(planned_keys(jobs) - set(quoted))}
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- the README
def fmt_stats(s):
    return f"{s.mean:.4f} ± {s.std:.4f} ({s.min:.4f}–{s.max:.4f})"


def fmt_diff(d):
    return f"{d.mean:+.4f} ({d.min:+.4f} to {d.max:+.4f})"


def fmt_val(values):
    return fmt_stats(stats(list(values.values()))) if values else "not measured"


def label(name):
    """'stage 3' for a ladder name ('stage3'), the title of an ablation."""
    if name in ABLATION_BY_NAME:
        return ABLATION_BY_NAME[name].title
    return name.replace("stage", "stage ")


def ladder_rows(runs, jobs, num_train):
    """(rows of the ladder table, whether stage 2's LONG cell says it is stage 1's figure)."""
    rows, reused = [], False
    for stage, script in enumerate(stages.STAGE_FILES):
        cells = [str(stage), f"[{script}](../../{script})", stages.CONCEPTS[stage]]
        for steps in (SHORT, LONG, num_train):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            if values:
                cells.append(fmt_val(values))
            elif stage == 2 and steps == LONG:
                reused = True
                cells.append("not run: the same as stage 1 †")
            elif ("ladder", f"stage{stage}", steps, SEEDS[0]) in map(job_key, jobs):
                cells.append("not measured")
            else:
                cells.append("-")
        rows.append("| " + " | ".join(cells) + " |")
    return rows, reused


def ladder_note(runs):
    one = val_by_seed(runs, "ladder", "stage1", SHORT)
    two = val_by_seed(runs, "ladder", "stage2", SHORT)
    same = ", ".join(str(s) for s in sorted(one) if s in two and one[s] == two[s])
    return stages.template(TEMPLATE, "ladder_note", seeds=same or "none", long=f"{LONG:,}")


def ablation_rows(runs, jobs):
    rows = []
    for stage in sorted({a.stage for a in ABLATIONS}, reverse=True):
        for steps in sorted({j.steps for j in jobs if j.group == "ablation" and j.stage == stage}):
            full = fmt_val(val_by_seed(runs, "ladder", f"stage{stage}", steps))
            rows.append(f"| {stage} | unchanged | - | {steps:,} | {full} | - | - |")
    for a in ABLATIONS:
        change = [f"[diff](ablations/{a.name}.diff)"] if a.edits else []
        change = " ".join(change + [f"`{s}`" for s in a.settings])
        for steps in sorted({j.steps for j in jobs if j.name == a.name}):
            found = comparison(runs, a.name, steps)
            errors = [r["error"] for r in runs if r["name"] == a.name
                      and r["num_steps"] == steps and r.get("error")]
            if found:
                cells = [fmt_stats(found[0]), fmt_diff(found[2]), found[3]]
            else:
                cells = ["failed: " + errors[0] if errors else "not measured", "-", "-"]
            rows.append(f"| {a.stage} | {a.title} | {change} | {steps:,} | " + " | ".join(cells)
                        + " |")
    return rows


def sgd_note(runs):
    sgd = val_by_seed(runs, "ablation", "sgd", SHORT)
    four = val_by_seed(runs, "ladder", "stage4", SHORT)
    both = sorted(set(sgd) & set(four))
    if not both:
        return ""
    gap = max(abs(sgd[s] - four[s]) for s in both)
    same = "equal to stage 4's" if gap == 0 else f"within {gap:.4f} of stage 4's"
    return stages.template(TEMPLATE, "sgd_note", short=f"{SHORT:,}", long=f"{LONG:,}",
                           same=same, seeds=", ".join(map(str, both)))


def factorial_rows(runs):
    """The 2 x 2 of stage 3: attention beyond the current position x position embeddings."""
    models = [("stage3", "ladder", "attention and position embeddings (stage 3)"),
              ("s3_no_position", "ablation", "attention, no position embeddings"),
              ("s3_attention_current", "ablation", "position embeddings, attention on the "
               "current position only"),
              ("s3_no_context", "ablation", "neither: the next letter from the current one")]
    rows = []
    for steps in (SHORT, LONG):
        for name, group, title in models:
            found = comparison(runs, name, steps) if group == "ablation" else None
            val = fmt_val(val_by_seed(runs, group, name, steps))
            diff = fmt_diff(found[2]) if found else "-"
            rows.append(f"| {steps:,} | {title} | {val} | {diff} |")
        mlp = val_by_seed(runs, "ladder", "stage2", steps) or val_by_seed(runs, "ladder",
                                                                          "stage1", steps)
        rows.append(f"| {steps:,} | stages 1 and 2 (the MLP on the current letter) | "
                    f"{fmt_val(mlp)} | - |")
    return rows


def demo_rows(runs):
    """The attention demo, seed by seed: stage 3 on strings written twice."""
    full = {r["seed"]: r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")}
    current = val_by_seed(runs, "demo", DEMOS[1].name, DEMO_STEPS)
    rows = []
    for seed in SEEDS:
        run = full.get(seed)
        if run is None or seed not in current:
            rows.append(f"| {seed} | not measured | - | - | - |")
            continue
        rows.append(f"| {seed} | {run['val_loss']:.4f} | {current[seed]:.4f} | "
                    f"{run['attention']['max_weight']:.4f} | {run['attention']['on_match']:.4f} |")
    return rows


def demo_note(fig):
    if "demo.floor" not in fig:
        return ""
    return stages.template(TEMPLATE, "demo_note", length=fig["demo.length"],
                           predictions=2 * fig["demo.length"] + 1,
                           floor=f"{fig['demo.floor']:.4f}", twice=f"{2 * fig['demo.floor']:.4f}")


def sample_rows(runs, jobs):
    rows = []
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({j.steps for j in jobs if j.group == "ladder" and j.stage == stage}):
            mine = ladder_runs(runs, stage, steps)
            n = sum(len(r["samples"]) for r in mine)
            if not n:
                continue
            in_train = sum(r["samples_in_train"] for r in mine)
            in_data = sum(r["samples_in_data"] for r in mine)
            first = [r for r in mine if r["seed"] == SEEDS[0]] or mine
            examples = ", ".join(s or "(empty)" for s in first[0]["samples"][:6])
            distinct = len({sample for r in mine for sample in r["samples"]})
            rows.append(f"| {stage} | {steps:,} | {n} | {distinct} | {in_train / n:.0%} "
                        f"({in_train}) | {in_data / n:.0%} ({in_data}) | {examples} |")
    return rows


def missing_text(runs, jobs):
    done = {record_key(r) for r in runs}
    groups = {}
    for j in jobs:
        if job_key(j) not in done:
            groups.setdefault((j.name, j.steps), []).append(str(j.seed))
    if not groups:
        return "Every job of the plan was measured."
    lines = [f"- {label(name)} at {steps:,} steps, seed{'s' if len(seeds) > 1 else ''} "
             f"{', '.join(seeds)}" for (name, steps), seeds in groups.items()]
    return stages.template(TEMPLATE, "missing", jobs="\n".join(lines))


def runtime_rows(runs):
    walls = {}
    for r in runs:
        walls.setdefault((r["name"], r["num_steps"]), []).append(r["wall_s"])
    return [f"| {label(name)} | {steps:,} | {s.n} | {s.mean:.1f} ({s.min:.1f}–{s.max:.1f}) |"
            for (name, steps), s in ((key, stats(values)) for key, values in walls.items())]


def render_readme(results, jobs, num_train):
    """The text of README.md: the template's page with every table filled in."""
    runs = results["runs"]
    ladder, reused = ladder_rows(runs, jobs, num_train)
    seeds = ", ".join(map(str, SEEDS))
    return stages.template(
        TEMPLATE, "page", seeds=seeds, num_samples=NUM_SAMPLES, seed=SEEDS[0],
        machine=stages.machine_line(results["machine"]), short=f"{SHORT:,}", long=f"{LONG:,}",
        epoch=f"{num_train:,}", ladder_rows="\n".join(ladder),
        ladder_note=ladder_note(runs) if reused else "",
        ablation_rows="\n".join(ablation_rows(runs, jobs)), sgd_note=sgd_note(runs),
        factorial_rows="\n".join(factorial_rows(runs)), demo_steps=f"{DEMO_STEPS:,}",
        demo_settings=" ".join(DEMO_SETTINGS), demo_rows="\n".join(demo_rows(runs)),
        demo_note=demo_note(figures(results)), sample_rows="\n".join(sample_rows(runs, jobs)),
        missing=missing_text(runs, jobs), runtime_rows="\n".join(runtime_rows(runs)),
        runs=len(runs), hours=f"{sum(r['wall_s'] for r in runs) / 3600:.1f}") + "\n"


def ablation_diff(ablation):
    """Unified diff of the stage script to its ablated copy, under a generated-file line."""
    name = stages.STAGE_FILES[ablation.stage]
    old = stages.read_stage(ablation.stage)
    new = patch(old, ablation.edits)
    diff = difflib.unified_diff(stages.split_lines(old), stages.split_lines(new), f"a/{name}",
                                f"b/{name}", n=3)
    run_with = f", run with {' '.join(ablation.settings)}" if ablation.settings else ""
    head = f"# generated by {TOOL}: the ablation '{ablation.title}'{run_with}; do not edit\n"
    return head + "".join(diff)


# ---------------------------------------------------------------- the figures
def ladder_figure(runs, num_train, plt):
    """Val loss by stage, one series per budget, the seed range as error bars."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    series = [(SHORT, f"{SHORT:,} steps", "o", -0.15, "C0"),
              (LONG, f"{LONG:,} steps", "s", 0.0, "C1"),
              (num_train, f"one epoch ({num_train:,} steps)", "^", 0.15, "C2")]
    for steps, name, marker, offset, color in series:
        xs, means, low, high = [], [], [], []
        for stage in range(len(stages.STAGE_FILES)):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            if values:
                s = stats(list(values.values()))
                xs.append(stage + offset)
                means.append(s.mean)
                low.append(s.mean - s.min)
                high.append(s.max - s.mean)
        if xs:
            ax.errorbar(xs, means, yerr=[low, high], fmt=marker, capsize=3, label=name,
                        color=color)
    ax.set_xticks(range(len(stages.STAGE_FILES)))
    ax.set_xticklabels([f"{k}\n{stages.CONCEPTS[k]}" for k in range(len(stages.STAGE_FILES))],
                       fontsize=7)
    ax.set_xlabel("stage")
    ax.set_ylabel("val loss (nats per character)")
    ax.set_title(f"Val loss by stage and budget: mean, bars = min-max over {len(SEEDS)} seeds")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return png_bytes(fig, plt)


def ablations_figure(runs, jobs, plt):
    """Each full-model ablation's paired difference to stage 5, one series per budget."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    budgets = sorted({j.steps for j in jobs if j.group == "ablation" and j.stage == FULL_STAGE})
    width = 0.8 / max(1, len(budgets))
    for b, steps in enumerate(budgets):
        ys, diffs, low, high = [], [], [], []
        for i, a in enumerate(FULL_ABLATIONS):
            found = comparison(runs, a.name, steps)
            if found:
                d = found[2]
                ys.append(i - 0.4 + width * (b + 0.5))
                diffs.append(d.mean)
                low.append(d.mean - d.min)
                high.append(d.max - d.mean)
        if ys:
            color = {SHORT: "C0", LONG: "C1"}.get(steps, "C2")   # as in the ladder figure
            ax.errorbar(diffs, ys, xerr=[low, high], fmt="os^"[b % 3], capsize=3,
                        label=f"{steps:,} steps", color=color)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(FULL_ABLATIONS)))
    ax.set_yticklabels([a.title.split(" (")[0] for a in FULL_ABLATIONS], fontsize=8)
    ax.set_ylim(len(FULL_ABLATIONS) - 0.5, -0.5)   # the first ablation on top
    ax.set_xlabel("val loss, ablated minus full model (nats per character)")
    ax.set_title("Ablations of stage 5: mean difference, bars = per-seed range")
    ax.grid(axis="x", alpha=0.3)
    if budgets:
        ax.legend(fontsize=8)
    return png_bytes(fig, plt)


def demo_figure(runs, run, plt):
    """Left: the attention weights of one seed's stage 3, mean over the held-out strings;
    right: val loss per seed, with attention and with the current position only."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2),
                                      gridspec_kw={"width_ratios": [1.1, 1]})
    grid = [row[:k + 1] + [math.nan] * (len(row) - k - 1)
            for k, row in enumerate(run["attention"]["grid"])]
    length = run["attention"]["length"]
    labels = ["BOS"] + [f"x{k + 1}" for k in range(length)] + [f"x{k + 1}'" for k in range(length)]
    image = left.imshow(grid, cmap="viridis", vmin=0, vmax=1)
    left.set_xticks(range(len(labels)), [f"{k}:{t}" for k, t in enumerate(labels)], fontsize=8)
    left.set_yticks(range(len(labels)), [f"{k}:{t}" for k, t in enumerate(labels)], fontsize=8)
    left.set_xlabel("key: the position attended to")
    left.set_ylabel("query: the position predicting the next letter")
    left.set_title(f"Stage 3 on 'abcabc' strings (seed {run['seed']}): attention weights",
                   fontsize=9)
    fig.colorbar(image, ax=left, label="weight, mean over 300 strings")
    seeds = sorted({r["seed"] for r in runs if r["group"] == "demo"})
    for offset, demo, color in ((-0.2, DEMOS[0], "C0"), (0.2, DEMOS[1], "C3")):
        values = val_by_seed(runs, "demo", demo.name, DEMO_STEPS)
        right.bar([k + offset for k, s in enumerate(seeds) if s in values],
                  [values[s] for s in seeds if s in values], width=0.4, color=color,
                  label="attention" if demo is DEMOS[0] else "current position only")
    floor = figures({"runs": runs})["demo.floor"]
    right.axhline(floor, color="black", ls="--", lw=0.8, label="perfect copy of the second half")
    right.axhline(2 * floor, color="gray", ls=":", lw=0.8, label="no copy: every letter guessed")
    right.set_xticks(range(len(seeds)), [f"seed {s}" for s in seeds])
    right.set_ylabel("val loss (nats per character)")
    right.set_title(f"Val loss after {DEMO_STEPS:,} steps", fontsize=9)
    right.legend(fontsize=7, loc="lower right")
    return png_bytes(fig, plt)


def png_bytes(fig, plt):
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def render_figures(results, jobs, num_train):
    """{path: PNG bytes} of the figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = results["runs"]
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        pngs = {LADDER_PNG: ladder_figure(runs, num_train, plt),
                ABLATIONS_PNG: ablations_figure(runs, jobs, plt)}
        demo = [r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")]
        if demo:
            pngs[DEMO_PNG] = demo_figure(runs, min(demo, key=lambda r: r["seed"]), plt)
    return pngs


def rendered(results, jobs, num_train):
    """{path: bytes} of every generated file but results.json."""
    files = {stages.FIGURES_FILE: figures_json(results, jobs).encode("utf-8"),
             README: render_readme(results, jobs, num_train).encode("utf-8")}
    for a in ABLATIONS:
        if a.edits:
            files[DIFF_DIR / f"{a.name}.diff"] = ablation_diff(a).encode("utf-8")
    files.update(render_figures(results, jobs, num_train))
    return files
