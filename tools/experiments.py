"""Measure what each concept buys: the six stage scripts over seeds and budgets, ablations of
stage 3 and of the full model, and the attention demo. Generates, in benchmarks/experiments/:

    results.json         every run: stage or ablation, settings, val loss, train loss (last 50
                         steps), samples and how many are names of the data, wall time, and the
                         SHA-256 of the script that ran (an ablation: the patched copy), of its
                         text and of its code (comments and docstrings left out: --check
                         compares that one, so a comment edit does not call for a rerun)
    figures.json         every figure prose may quote as {{exp:KEY}}, as text (stages.fill_figures
                         fills them in the notebooks and the README), e.g. 'ladder.s3.1000' ->
                         '2.424 nats', and the keys the plan will measure but has not yet
    README.md            the tables (text: tools/templates/experiments_readme.md)
    ladder.png           val loss by stage and budget, seed range as error bars
    ablations.png        each ablation's val loss minus the full model's, per seed range
    attention_demo.png   the demo's attention weights and val losses
    ablations/<name>.diff  the change each code ablation makes to its stage script

It reads the stage scripts, data/names.txt and data/repeats.txt, tools/attention_probe.py and
the ablations of tools/templates/ablations.toml.

    python tools/experiments.py           # run every job not yet recorded, then render (hours on
                                          # 2 cores; stop it any time and run it again: each run
                                          # is written to results.json as it finishes)
    python tools/experiments.py --plan    # list the jobs still to run and an estimate of the time
    python tools/experiments.py --render  # only rewrite figures.json, README.md, figures, diffs
    python tools/experiments.py --quotes  # every figure other tools can quote, by key
    python tools/experiments.py --check   # write nothing, run nothing; exit 1 if results.json
                                          # measured other scripts or patches, or a generated
                                          # file differs from what results.json renders to

A job runs a copy of a stage script (an ablation: with a few exact text edits, each of which
must match exactly once) from a temporary directory, as a subprocess, two at a time, in the
priority order of plan(). Standard library, plus matplotlib for the figures.
"""
import argparse
import ast
import concurrent.futures
import difflib
import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
import time
import tomllib
from collections import namedtuple
from pathlib import Path

import stages

TOOL = "tools/experiments.py"
OUT_DIR = stages.ROOT / "benchmarks" / "experiments"
RESULTS = OUT_DIR / "results.json"
README = OUT_DIR / "README.md"
LADDER_PNG = OUT_DIR / "ladder.png"
ABLATIONS_PNG = OUT_DIR / "ablations.png"
DEMO_PNG = OUT_DIR / "attention_demo.png"
DIFF_DIR = OUT_DIR / "ablations"
DATA = stages.ROOT / "data" / "names.txt"
DEMO_DATA = stages.ROOT / "data" / "repeats.txt"   # the attention demo's strings written twice
PROBE = Path(__file__).with_name("attention_probe.py")
TEMPLATE = "experiments_readme.md"
SEEDS = [1, 2, 3]
SHORT = 1000   # every stage's default num_steps
LONG = 10000
ABLATION_LONG = 3000   # every ablation at 3,000, then at LONG as far as time allows
FULL_STAGE = 5
NUM_SAMPLES = 50
# Rough wall seconds per training step of each stage, run alone on the 2-core machine, for --plan
SECONDS_PER_STEP = {0: 0.0001, 1: 0.0045, 2: 0.016, 3: 0.025, 4: 0.029, 5: 0.030}
SECONDS_PER_RUN = 5   # start-up, evaluation on 300 names, 50 samples
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


# ---------------------------------------------------------------- the plan
def data_split():
    """(training names, all names of the data file, number of training names), as stage 0's own
    code splits them."""
    ns = stages.load_stage(0, [f"--data_path={DATA}"])
    return set(ns["train_docs"]), set(ns["docs"]), len(ns["train_docs"])


def plan(num_train=None):
    """Every job, in the order they run: (1) the ladder at SHORT, (2) the ablations at SHORT,
    (3) the ladder at LONG, (4) the ablations at ABLATION_LONG (with the full model first if
    that is not LONG), (5) every full-model ablation at LONG, (6) stage 3's factorial of
    attention x position embeddings at LONG, (7) the attention demo, (8) stage 3's ablations at
    SHORT. Stage 2 computes what stage 1 computes (tests/test_math.py, to 1e-9), so it is not
    run at LONG. Stage 0 also runs one full epoch (num_train steps)."""
    if num_train is None:
        num_train = data_split()[2]
    ladder = lambda stage, steps: [Job("ladder", f"stage{stage}", stage, steps, s) for s in SEEDS]
    ablation = lambda name, steps, group="ablation": [
        Job(group, name, ABLATION_BY_NAME[name].stage, steps, s) for s in SEEDS]
    jobs = []
    for stage in range(len(stages.STAGE_FILES)):
        jobs += ladder(stage, SHORT)
    jobs += ladder(0, num_train)
    for a in FULL_ABLATIONS:
        jobs += ablation(a.name, SHORT)
    for stage in range(len(stages.STAGE_FILES)):
        if stage != 2:
            jobs += ladder(stage, LONG)
    if ABLATION_LONG != LONG:
        jobs += ladder(FULL_STAGE, ABLATION_LONG)
    for a in FULL_ABLATIONS:
        jobs += ablation(a.name, ABLATION_LONG)
    for name in [a.name for a in FULL_ABLATIONS] + FACTORIAL:
        jobs += ablation(name, LONG)
    for demo in DEMOS:
        jobs += ablation(demo.name, DEMO_STEPS, "demo")
    for a in STAGE3_ABLATIONS:
        jobs += ablation(a.name, SHORT)
    return jobs


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


def patch(text, edits):
    """text with each (old, new) edit applied; each old must occur exactly once."""
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise stages.CourseError(f"ablation edit {old.strip()!r} matches {count} times, "
                                     "not once")
        text = text.replace(old, new)
    return text


def job_script(job):
    """(file name, exact text) of the script job runs."""
    text = stages.read_stage(job.stage)
    if job.group != "ladder":
        text = patch(text, ABLATION_BY_NAME[job.name].edits)
    if job.group == "demo":
        text += PROBE.read_text(encoding="utf-8")
    return stages.STAGE_FILES[job.stage], text


def job_settings(job):
    """The job's settings on the command line (the data path is added when it runs)."""
    extra = ABLATION_BY_NAME[job.name].settings if job.group != "ladder" else []
    return [f"--num_steps={job.steps}", f"--seed={job.seed}", f"--num_samples={NUM_SAMPLES}",
            *extra]


def sha256_text(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def code_sha256(text):
    """SHA-256 of what a script computes: its syntax tree without docstrings, so that editing a
    comment or a docstring does not make its measurements stale (a run records the text's
    SHA-256 too)."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        kinds = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        body = node.body if isinstance(node, kinds) else None
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return sha256_text(ast.dump(tree))


def job_key(job):
    return (job.group, job.name, job.steps, job.seed)


def record_key(run):
    return (run["group"], run["name"], run["num_steps"], run["seed"])


def estimate_s(job):
    layers = 2 if "--n_layer=2" in job_settings(job) else 1
    return SECONDS_PER_STEP[job.stage] * job.steps * layers + SECONDS_PER_RUN


# ---------------------------------------------------------------- running
def parse_output(out, demo=False):
    """The figures a stage script prints: num_params, train_loss_last50, val_loss, samples, and
    for the demo what tools/attention_probe.py prints."""
    row = {}
    for key in ("num_params", "train_loss_last50", "val_loss"):
        match = re.search(stages.OUTPUT_FIELDS[key], out, re.MULTILINE)
        if not match:
            raise ValueError(f"no line matching {stages.OUTPUT_FIELDS[key]!r} in the output")
        row[key] = int(match.group(1)) if key == "num_params" else float(match.group(1))
    row["samples"] = re.findall(r"^sample \d+: (.*)$", out, re.MULTILINE)
    if demo:
        probe = re.search(r"^attention: (.*)$", out, re.MULTILINE)
        if not probe:
            raise ValueError("no 'attention: ...' line from tools/attention_probe.py")
        row["attention"] = json.loads(probe.group(1))
    return row


def run_job(job, train_names, data_names):
    """Run one job in a temporary directory; its record for results.json."""
    name, text = job_script(job)
    settings = job_settings(job)
    run = {"group": job.group, "name": job.name, "stage": job.stage, "num_steps": job.steps,
           "seed": job.seed, "settings": settings, "script": name, "sha256": sha256_text(text),
           "code_sha256": code_sha256(text)}
    with tempfile.TemporaryDirectory(prefix="experiments-") as tmp:
        (Path(tmp) / name).write_text(text, encoding="utf-8")
        data = DEMO_DATA if job.group == "demo" else DATA
        command = [sys.executable, name, *settings, f"--data_path={data}"]
        load_before = os.getloadavg()[0]
        code, out, err, wall, usage = stages.run_child(command, cwd=tmp)
    try:
        if code != 0:
            raise ValueError((err.strip().splitlines() or ["(no message)"])[-1])
        run.update(parse_output(out, job.group == "demo"))
    except ValueError as e:
        run.update(error=str(e), val_loss=None, train_loss_last50=None, samples=[])
    run["samples_in_train"] = sum(1 for s in run["samples"] if s in train_names)
    run["samples_in_data"] = sum(1 for s in run["samples"] if s in data_names)
    run["wall_s"] = round(wall, 1)
    run["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    run["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return run


def load_results():
    if not RESULTS.exists():
        raise stages.CourseError(f"{RESULTS.relative_to(stages.ROOT)} is missing: run python "
                                 f"{TOOL}")
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def save_results(runs, jobs):
    """Write results.json atomically, the runs in plan order (runs not in the plan last)."""
    order = {job_key(job): i for i, job in enumerate(jobs)}
    runs = sorted(runs, key=lambda r: order.get(record_key(r), len(order)))
    data = {"generated": f"by {TOOL}; do not edit: rerun the tool",
            "machine": stages.machine_info(), "data": "data/names.txt", "runs": runs}
    carried = RESULTS.exists() and load_results().get("carried_over")   # older runs carried over
    if carried:
        data["carried_over"] = carried
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def fresh_runs(runs, jobs):
    """The runs that measured a job of the plan with today's script and settings."""
    by_key = {job_key(job): job for job in jobs}
    hashes = {}   # (group, name, stage): code_sha256 of the script those jobs run now
    fresh = []
    for run in runs:
        job = by_key.get(record_key(run))
        if job is None:
            continue
        where = (job.group, job.name, job.stage)
        if where not in hashes:
            hashes[where] = code_sha256(job_script(job)[1])
        if run["code_sha256"] == hashes[where] and run["settings"] == job_settings(job):
            fresh.append(run)
    return fresh


def pending(jobs):
    """(fresh runs recorded, jobs of the plan still to run)."""
    runs = fresh_runs(load_results()["runs"] if RESULTS.exists() else [], jobs)
    done = {record_key(run) for run in runs}
    return runs, [job for job in jobs if job_key(job) not in done]


def run_plan(workers):
    train_names, data_names, num_train = data_split()
    jobs = plan(num_train)
    runs, todo = pending(jobs)
    total = sum(estimate_s(job) for job in todo)
    print(f"{len(runs)} of {len(jobs)} jobs recorded; {len(todo)} to run, {workers} at a time: "
          f"about {total / workers / 60:.0f} minutes if nothing else runs", flush=True)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_job, job, train_names, data_names) for job in todo]
        for i, future in enumerate(concurrent.futures.as_completed(futures), 1):
            run = future.result()
            runs.append(run)
            save_results(runs, jobs)
            result = run.get("error") or f"val {run['val_loss']:.4f}"
            print(f"[{i}/{len(todo)} {(time.perf_counter() - start) / 60:.0f} min] {run['name']} "
                  f"{run['num_steps']} steps seed {run['seed']}: {result}, {run['wall_s']} s",
                  flush=True)


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


def render_readme(results, num_train):
    """The text of README.md: the template's page with every table filled in."""
    runs = results["runs"]
    jobs = plan(num_train)
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


def ablations_figure(runs, num_train, plt):
    """Each full-model ablation's paired difference to stage 5, one series per budget."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    budgets = sorted({j.steps for j in plan(num_train) if j.group == "ablation"
                      and j.stage == FULL_STAGE})
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


def render_figures(results, num_train):
    """{path: PNG bytes} of the figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = results["runs"]
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        pngs = {LADDER_PNG: ladder_figure(runs, num_train, plt),
                ABLATIONS_PNG: ablations_figure(runs, num_train, plt)}
        demo = [r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")]
        if demo:
            pngs[DEMO_PNG] = demo_figure(runs, min(demo, key=lambda r: r["seed"]), plt)
    return pngs


# ---------------------------------------------------------------- render, check, main
def rendered(results, num_train):
    """{path: bytes} of every generated file but results.json."""
    files = {stages.FIGURES_FILE: figures_json(results, plan(num_train)).encode("utf-8"),
             README: render_readme(results, num_train).encode("utf-8")}
    for a in ABLATIONS:
        if a.edits:
            files[DIFF_DIR / f"{a.name}.diff"] = ablation_diff(a).encode("utf-8")
    files.update(render_figures(results, num_train))
    return files


def render():
    for path, content in rendered(load_results(), data_split()[2]).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(stages.ROOT)}")


def check():
    """CourseError unless results.json measured today's scripts, patches and settings for jobs
    of the plan, and every generated file is what results.json renders to."""
    results = load_results()
    num_train = data_split()[2]
    fresh = fresh_runs(results["runs"], plan(num_train))
    if len(fresh) != len(results["runs"]):
        stale = [r for r in results["runs"] if r not in fresh][0]
        raise stages.CourseError(
            f"results.json has a run of {stale['name']} ({stale['num_steps']} steps, seed "
            f"{stale['seed']}) that is not in the plan or measured another version of its "
            f"script or settings: rerun python {TOOL}")
    for path, content in rendered(results, num_train).items():
        if not path.exists() or path.read_bytes() != content:
            raise stages.CourseError(f"{path.relative_to(stages.ROOT)} is out of date: run "
                                     f"python {TOOL} --render")


def print_plan(workers):
    jobs = plan()
    todo = pending(jobs)[1]
    for job in todo:
        print(f"{job.name:<18} {job.steps:>6} steps  seed {job.seed}  ~{estimate_s(job):.0f} s")
    total = sum(estimate_s(job) for job in todo)
    print(f"{len(todo)} of {len(jobs)} jobs to run: about {total / 60:.0f} minutes of "
          f"run time, {total / workers / 60:.0f} minutes {workers} at a time")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="run and write nothing; exit 1 if a generated file is stale")
    mode.add_argument("--render", action="store_true", help="only rewrite the generated files")
    mode.add_argument("--plan", action="store_true", help="list the jobs still to run")
    mode.add_argument("--quotes", action="store_true",
                      help="print every quotable figure as key: text (see quotes())")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs at a time (default: the number of CPUs, at most 2)")
    opts = parser.parse_args()
    if opts.jobs < 1:
        raise stages.CourseError(f"--jobs must be at least 1, got {opts.jobs}")
    if opts.check:
        check()
        print("benchmarks/experiments is up to date")
    elif opts.render:
        render()
    elif opts.quotes:
        for key, text in quotes(load_results()).items():
            print(f"{key}: {text}")
    elif opts.plan:
        print_plan(opts.jobs)
    else:
        run_plan(opts.jobs)
        render()


if __name__ == "__main__":
    stages.run(main)
