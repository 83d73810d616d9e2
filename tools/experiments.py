"""Measure what each concept buys: the six stage scripts over seeds and budgets, and ablations
of the full model. Generates, in benchmarks/experiments/:

    results.json         every run: stage or ablation, settings, val loss, train loss (last 50
                         steps), samples and how many are names of the data, wall time, and the
                         SHA-256 of the script that ran (an ablation: the patched copy), of its
                         text and of its code (comments and docstrings left out: --check
                         compares that one, so a comment edit does not call for a rerun)
    README.md            the tables: the ladder, the ablations, the samples, what is missing
    ladder.png           val loss by stage and budget, seed range as error bars
    ablations.png        each ablation's val loss minus the full model's, per seed range
    ablations/<name>.diff  the change each code ablation makes to train5_adam.py

    python tools/experiments.py           # run every job not yet recorded, then render (about an
                                          # hour on 2 cores; stop it any time and run it again:
                                          # each run is written to results.json as it finishes)
    python tools/experiments.py --plan    # list the jobs still to run and an estimate of the time
    python tools/experiments.py --render  # only rewrite README.md, figures and diffs
    python tools/experiments.py --quotes  # every figure other tools can quote, by key
    python tools/experiments.py --check   # write nothing, run nothing; exit 1 if results.json
                                          # measured other scripts or patches, or a generated
                                          # file differs from what results.json renders to

A job runs a copy of a stage script (an ablation: a copy of train5_adam.py with a few exact
text edits, each of which must match exactly once) from a temporary directory, as a subprocess,
two at a time, in the priority order of plan(). Other tools quote the figures instead of typing
them: `import experiments; experiments.quote('ladder', stage=3, steps=1000)` gives
'2.432 ± 0.004 (3 seeds)', and `experiments.quotes()` every such text by key.
Standard library, plus matplotlib for the figures.
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
from collections import namedtuple
from pathlib import Path

import benchmark
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
SEEDS = [1, 2, 3]
SHORT = 1000   # every stage's default num_steps
LONG = 10000
ABLATION_LONG = 3000   # every ablation at 3,000, then at LONG as far as time allows
FULL_STAGE = 5   # the ablations change train5_adam.py
NUM_SAMPLES = 50
# Rough wall seconds per training step of each stage, run alone on the 2-core machine, for --plan
SECONDS_PER_STEP = {0: 0.0001, 1: 0.0045, 2: 0.016, 3: 0.025, 4: 0.029, 5: 0.030}
SECONDS_PER_RUN = 5   # start-up, evaluation on 300 names, 50 samples
Job = namedtuple("Job", "group name stage steps seed")   # group: ladder, ablation or demo
# edits: (old, new) text pairs; stage: the script changed, compared with that stage's ladder runs
Ablation = namedtuple("Ablation", "name title edits settings stage", defaults=[FULL_STAGE])
CURRENT_ONLY = ("x = attention(q, keys, values)", "x = attention(q, keys[-1:], values[-1:])")
NO_POSITION = ("x = [t + p for t, p in zip(tok_emb, pos_emb)]", "x = tok_emb")
NO_RMSNORM = ("    return [xi * scale for xi in x]\n", "    return x\n")
# Most informative first: plan() runs them in this order.
ABLATIONS = [
    Ablation("attention_current", "attention restricted to the current position",
             [("attention(q_h, k_h, v_h)", "attention(q_h, k_h[-1:], v_h[-1:])")], []),
    Ablation("no_position", "no position embeddings",
             [("x = [t + p for t, p in zip(tok_emb, pos_emb)]", "x = tok_emb")], []),
    Ablation("two_layers", "2 layers instead of 1", [], ["--n_layer=2"]),
    Ablation("one_head", "1 head instead of 4", [], ["--n_head=1"]),
    Ablation("no_residual", "no residual connections",
             [("        x = [a + b for a, b in zip(x, x_residual)]   # residual: the block adds "
               "to its input\n", ""),
               ("(n_embd,)\n        x = [a + b for a, b in zip(x, x_residual)]\n",
                "(n_embd,)\n")], []),
    Ablation("no_rmsnorm", "no rmsnorm", [NO_RMSNORM], []),
    Ablation("sgd", "SGD instead of Adam (learning_rate 0.1, as stage 4)",
             [("p.data -= lr_t * m_hat / (v_hat ** 0.5 + 1e-8)   # 1e-8: their epsilon, for "
               "v_hat ~ 0", "p.data -= lr_t * p.grad")],
             ["--learning_rate=0.1"]),
]
EXTRA_LONG_ABLATIONS = [a.name for a in ABLATIONS]   # at LONG too, after everything else
# Stage 3, where context arrives: attention and position embeddings can stand in for each other,
# so they are measured as a 2 x 2 factorial (with the stage itself), at SHORT and LONG; residual
# connections and rmsnorm at SHORT.
STAGE3_ABLATIONS = [
    Ablation("s3_no_context", "no attention beyond the current position and no position "
             "embeddings", [CURRENT_ONLY, NO_POSITION], [], 3),
    Ablation("s3_attention_current", "attention restricted to the current position",
             [CURRENT_ONLY], [], 3),
    Ablation("s3_no_position", "no position embeddings", [NO_POSITION], [], 3),
    Ablation("s3_no_residual", "no residual connections",
             [("    x = [a + b for a, b in zip(x, x_residual)]   # residual: the block adds to "
               "its input\n", ""),
              ("(n_embd,)\n    x = [a + b for a, b in zip(x, x_residual)]\n", "(n_embd,)\n")],
             [], 3),
    Ablation("s3_no_rmsnorm", "no rmsnorm", [NO_RMSNORM], [], 3),
]
FULL_ABLATIONS = list(ABLATIONS)
ABLATIONS += STAGE3_ABLATIONS
FACTORIAL = ["s3_no_context", "s3_attention_current", "s3_no_position"]   # at LONG too
# The attention demo: stage 3 on data/repeats.txt (three random letters written twice), where
# the second half can only be predicted by looking back; the stage, and attention restricted to
# the current position. PROBE, appended to the script, prints attention weights on the val set.
DEMO_STEPS = 2000   # SGD at stage 3's learning_rate 0.1 has not found the copy by SHORT steps
DEMO_SETTINGS = ["--learning_rate=0.5"]
DEMOS = [Ablation("demo_full", "stage 3", [], DEMO_SETTINGS, 3),
         Ablation("demo_current", "attention restricted to the current position",
                  [CURRENT_ONLY], DEMO_SETTINGS, 3)]
ABLATION_BY_NAME = {a.name: a for a in ABLATIONS + DEMOS}
PROBE = Path(__file__).with_name("attention_probe.py")


class Stale(Exception):
    """The committed results or generated files do not match the scripts and this tool."""


# ---------------------------------------------------------------- the plan
def data_split():
    """(training names, all names of the data file), as stage 0's own code splits them."""
    scope, _ = benchmark.load_stage(0, stages.ROOT, [f"--data_path={DATA}"])
    return set(scope["train_docs"]), set(scope["docs"]), len(scope["train_docs"])


def plan(num_train=None):
    """Every job, in the order they run: (1) the ladder at SHORT, (2) the ablations at SHORT,
    (3) the ladder at LONG, (4) the ablations at ABLATION_LONG (with the full model first if
    that is not LONG), (5) EXTRA_LONG_ABLATIONS at LONG, (6) stage 3's factorial of attention x
    position embeddings at LONG (the longest runs first), (7) the attention demo, (8) stage 3's
    ablations at SHORT. Stage 2 computes what stage 1
    computes (tests/test_math.py, to 1e-9), so it is not run at LONG. Stage 0 also runs one
    full epoch (num_train steps)."""
    if num_train is None:
        num_train = data_split()[2]
    ladder = lambda stage, steps: [Job("ladder", f"stage{stage}", stage, steps, s) for s in SEEDS]
    ablation = lambda name, steps, group="ablation": [
        Job(group, name, ABLATION_BY_NAME[name].stage, steps, s) for s in SEEDS]
    full_model = [a for a in ABLATIONS if a.stage == FULL_STAGE]
    jobs = []
    for stage in range(len(stages.STAGE_FILES)):
        jobs += ladder(stage, SHORT)
    jobs += ladder(0, num_train)
    for a in full_model:
        jobs += ablation(a.name, SHORT)
    for stage in range(len(stages.STAGE_FILES)):
        if stage != 2:
            jobs += ladder(stage, LONG)
    if ABLATION_LONG != LONG:
        jobs += ladder(FULL_STAGE, ABLATION_LONG)
    for a in full_model:
        jobs += ablation(a.name, ABLATION_LONG)
    for name in EXTRA_LONG_ABLATIONS:
        jobs += ablation(name, LONG)
    for name in FACTORIAL:
        jobs += ablation(name, LONG)
    for demo in DEMOS:
        jobs += ablation(demo.name, DEMO_STEPS, "demo")
    for a in STAGE3_ABLATIONS:
        jobs += ablation(a.name, SHORT)
    return jobs


def patch(text, edits):
    """text with each (old, new) edit applied; each old must occur exactly once."""
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"ablation edit {old.strip()!r} matches {count} times, not once")
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
def parse_output(out):
    """The figures a stage script prints: num_params, train_loss_last50, val_loss, samples."""
    row = {}
    for key in ("num_params", "train_loss_last50", "val_loss"):
        match = re.search(benchmark.OUTPUT_FIELDS[key], out, re.MULTILINE)
        if not match:
            raise ValueError(f"no line matching {benchmark.OUTPUT_FIELDS[key]!r} in the output")
        row[key] = int(match.group(1)) if key == "num_params" else float(match.group(1))
    row["samples"] = re.findall(r"^sample \d+: (.*)$", out, re.MULTILINE)
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
        code, out, err, wall, usage = benchmark.run_child(command, cwd=tmp)
    if code != 0:
        run["error"] = (err.strip().splitlines() or ["(no message)"])[-1]
        run["val_loss"] = run["train_loss_last50"] = None
        run["samples"] = []
    else:
        try:
            run.update(parse_output(out))
            if job.group == "demo":
                probe = re.search(r"^attention: (.*)$", out, re.MULTILINE)
                if not probe:
                    raise ValueError("no 'attention: ...' line from tools/attention_probe.py")
                run["attention"] = json.loads(probe.group(1))
        except ValueError as e:
            run["error"] = str(e)
            run["val_loss"] = run["train_loss_last50"] = None
            run["samples"] = []
    run["samples_in_train"] = sum(1 for s in run["samples"] if s in train_names)
    run["samples_in_data"] = sum(1 for s in run["samples"] if s in data_names)
    run["wall_s"] = round(wall, 1)
    run["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 1)
    run["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return run


def load_results():
    if not RESULTS.exists():
        return {"runs": []}
    return json.loads(RESULTS.read_text(encoding="utf-8"))


def save_results(runs, jobs):
    """Write results.json atomically, the runs in plan order (runs not in the plan last)."""
    order = {job_key(job): i for i, job in enumerate(jobs)}
    runs = sorted(runs, key=lambda r: order.get(record_key(r), len(order)))
    data = {"generated": f"by {TOOL}; do not edit: rerun the tool",
            "machine": benchmark.machine_info(), "data": "data/names.txt", "runs": runs}
    carried = load_results().get("carried_over")   # a note that older runs were carried over
    if carried:
        data["carried_over"] = carried
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def expected_hashes(jobs):
    """{(group, name, stage): code_sha256 of the script those jobs run now}."""
    hashes = {}
    for job in jobs:
        where = (job.group, job.name, job.stage)
        if where not in hashes:
            hashes[where] = code_sha256(job_script(job)[1])
    return hashes


def fresh_runs(runs, jobs):
    """The runs that measured a job of the plan with today's script and settings."""
    by_key = {job_key(job): job for job in jobs}
    hashes = expected_hashes(jobs)
    fresh = []
    for run in runs:
        job = by_key.get(record_key(run))
        if job and run["code_sha256"] == hashes[(job.group, job.name, job.stage)] \
                and run["settings"] == job_settings(job):
            fresh.append(run)
    return fresh


def pending(jobs):
    """(fresh runs recorded, jobs of the plan still to run)."""
    runs = fresh_runs(load_results()["runs"], jobs)
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


def ablation_budgets(runs, name):
    return sorted({r["num_steps"] for r in runs if r["group"] != "ladder" and r["name"] == name})


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


def figures(results=None):
    """Flat {name: number} of every figure the README tables show, e.g. 'ladder.s3.1000.mean',
    'ablation.attention_current.3000.diff', 'samples.s5.1000.in_train' (a share, 0-1)."""
    runs = (results or load_results())["runs"]
    out = {}
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({r["num_steps"] for r in runs if r["stage"] == stage}):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            if values:
                for field, value in stats(list(values.values()))._asdict().items():
                    out[f"ladder.s{stage}.{steps}.{field}"] = value
            mine = [r for r in runs if r["group"] == "ladder" and r["stage"] == stage
                    and r["num_steps"] == steps and r["val_loss"] is not None]
            num_samples = sum(len(r["samples"]) for r in mine)
            if num_samples:
                out[f"samples.s{stage}.{steps}.n"] = num_samples
                for field in ("in_train", "in_data"):
                    count = sum(r[f"samples_{field}"] for r in mine)
                    out[f"samples.s{stage}.{steps}.{field}"] = count / num_samples
    for a in ABLATIONS + DEMOS[1:]:
        for steps in ablation_budgets(runs, a.name):
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


def quotes(results=None):
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
            out[base + ".spread"] = f"± {fig[base + '.std']:.3f} over {seeds_text(fig[base + '.n'])}"
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


def quote(kind, stage=None, steps=SHORT, name=None, results=None):
    """quote('ladder', stage=3, steps=1000), quote('ablation', name='no_rmsnorm', steps=3000),
    quote('samples', stage=5, steps=10000): the text quotes() has for that key."""
    key = f"{kind}.{name}.{steps}" if kind == "ablation" else f"{kind}.s{stage}.{steps}"
    found = quotes(results)
    if key not in found:
        raise KeyError(f"no measured figure {key!r} in {RESULTS.relative_to(stages.ROOT)}")
    return found[key]


# ---------------------------------------------------------------- rendering
def fmt_stats(s):
    return f"{s.mean:.4f} ± {s.std:.4f} ({s.min:.4f}–{s.max:.4f})"


def label(name):
    """'stage 3' for a ladder name ('stage3'), the title of an ablation."""
    if name in ABLATION_BY_NAME:
        return ABLATION_BY_NAME[name].title
    return name.replace("stage", "stage ")


def generated_line(what):
    return f"generated by {TOOL} from results.json ({what}); do not edit: rerun the tool"


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


def render_readme(results, num_train):
    runs = results["runs"]
    jobs = plan(num_train)
    lines = [f"<!-- {generated_line('the text is in the tool')} -->",
             "# What each concept buys: measurements", "",
             f"Made by `python {TOOL}`, which runs each job not yet recorded in "
             "[results.json](results.json) (resumable), then rewrites this page, the figures and "
             f"the ablation diffs; `python {TOOL} --check` fails when any of them is stale. "
             "Val loss is the mean cross-entropy, in nats per character, on the 300 held-out "
             f"names. Every configuration runs with seeds {', '.join(map(str, SEEDS))}: "
             "'mean ± std (min–max)' gives the mean, the sample standard deviation and the range "
             f"over the seeds. Each run samples {NUM_SAMPLES} names. Measured on "
             f"{benchmark.machine_line(results['machine'])}, two runs at a time.", "",
             f"## The ladder: every stage at {SHORT:,} and {LONG:,} steps", "",
             "![val loss by stage and budget](ladder.png)", "",
             f"| stage | script | concept | {SHORT:,} steps (default) | {LONG:,} steps | "
             f"one epoch ({num_train:,} steps) |", "|---:|---|---|---:|---:|---:|"]
    reused = False
    for stage, script in enumerate(stages.STAGE_FILES):
        cells = [str(stage), f"[{script}](../../{script})", stages.CONCEPTS[stage]]
        for steps in (SHORT, LONG, num_train):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            if values:
                cells.append(fmt_stats(stats(list(values.values()))))
            elif stage == 2 and steps == LONG:
                reused = True
                cells.append("not run: the same as stage 1 †")
            elif any(job_key(j) == ("ladder", f"stage{stage}", steps, SEEDS[0]) for j in jobs):
                cells.append("not measured")
            else:
                cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    if reused:
        one = val_by_seed(runs, "ladder", "stage1", SHORT)
        two = val_by_seed(runs, "ladder", "stage2", SHORT)
        same = sorted(s for s in one if s in two and one[s] == two[s])
        lines += ["", f"† Stage 2 computes what stage 1 computes with autograd instead of "
                  "hand-written gradients: `tests/test_math.py::test_stage2_losses_equal_stage1_"
                  "losses` proves every step's loss equal to 1e-9, and at 1,000 steps the val "
                  f"losses printed here are equal for seeds {', '.join(map(str, same)) or 'none'}"
                  f". So stage 2 at {LONG:,} steps is not run: it is stage 1's figure."]
    lines += ["", "## Ablations of stage 3 and of the full model (stage 5)", "",
              "Each ablation changes one thing in a copy of `train3_single_head.py` or "
              "`train5_adam.py`: a few lines (the "
              "diff is linked) or a setting. 'Difference' is the ablation's val loss minus the "
              "unchanged stage's for the same seed (same initialization and data order where the "
              "change leaves the parameters alone), as a mean and the per-seed range; positive "
              "means the model is worse without the concept. 'Beyond the seed spread' means "
              "every seed of the ablation is worse (or every one better) than every seed of the "
              "full model.", "", "![ablations: val loss difference to the full model]"
              "(ablations.png)", "",
              "| stage | ablation | change | steps | val loss, mean ± std (min–max) | difference "
              "to the stage, mean (per-seed min to max) | beyond the seed spread? |",
              "|---:|---|---|---:|---:|---:|---|"]
    for stage in sorted({a.stage for a in ABLATIONS}, reverse=True):
        for steps in sorted({j.steps for j in jobs if j.group == "ablation" and j.stage == stage}):
            values = val_by_seed(runs, "ladder", f"stage{stage}", steps)
            full = fmt_stats(stats(list(values.values()))) if values else "not measured"
            lines.append(f"| {stage} | unchanged | - | {steps:,} | {full} | - | - |")
    for a in ABLATIONS:
        change = f"[diff](ablations/{a.name}.diff)" if a.edits else ""
        change = " ".join(filter(None, [change, *(f"`{s}`" for s in a.settings)]))
        for steps in sorted({j.steps for j in jobs if j.name == a.name}):
            found = comparison(runs, a.name, steps)
            errors = [r for r in runs if r["name"] == a.name and r["num_steps"] == steps
                      and r.get("error")]
            if found:
                ablated, _, d, verdict = found
                cells = [fmt_stats(ablated), f"{d.mean:+.4f} ({d.min:+.4f} to {d.max:+.4f})",
                         verdict]
            elif errors:
                cells = ["failed: " + errors[0]["error"], "-", "-"]
            else:
                cells = ["not measured", "-", "-"]
            lines.append(f"| {a.stage} | {a.title} | {change} | {steps:,} | " + " | ".join(cells)
                         + " |")
    sgd = val_by_seed(runs, "ablation", "sgd", SHORT)
    four = val_by_seed(runs, "ladder", "stage4", SHORT)
    both = sorted(set(sgd) & set(four))
    if both:
        gap = max(abs(sgd[s] - four[s]) for s in both)
        same = "equal to stage 4's" if gap == 0 else f"within {gap:.4f} of stage 4's"
        lines += ["", f"The SGD ablation is stage 4's model, initialization and update in stage "
                  f"5's script: at {SHORT:,} steps its val losses are {same} for seeds "
                  f"{', '.join(map(str, both))}, so the ladder's stage 4 row shows it at "
                  f"{LONG:,} steps too."]
    lines += factorial_lines(runs) + demo_lines(runs)
    lines += ["", "## Samples: how many are names the model was trained on", "",
              f"Each run samples {NUM_SAMPLES} names at temperature 0.5; the shares count all "
              "seeds' samples, a name sampled twice twice; 'distinct' counts each name once. "
              "'Names in the data file' also counts the 300 held-out names.", "",
              "| stage | steps | samples | distinct | training names | names in the data file | "
              f"examples (seed {SEEDS[0]}) |", "|---:|---:|---:|---:|---:|---:|---|"]
    for stage in range(len(stages.STAGE_FILES)):
        for steps in sorted({j.steps for j in jobs if j.group == "ladder" and j.stage == stage}):
            mine = [r for r in runs if r["group"] == "ladder" and r["stage"] == stage
                    and r["num_steps"] == steps and r["val_loss"] is not None]
            n = sum(len(r["samples"]) for r in mine)
            if not n:
                continue
            in_train = sum(r["samples_in_train"] for r in mine)
            in_data = sum(r["samples_in_data"] for r in mine)
            first = [r for r in mine if r["seed"] == SEEDS[0]] or mine
            examples = ", ".join(s or "(empty)" for s in first[0]["samples"][:6])
            distinct = len({sample for r in mine for sample in r["samples"]})
            lines.append(f"| {stage} | {steps:,} | {n} | {distinct} | {in_train / n:.0%} "
                         f"({in_train}) | {in_data / n:.0%} ({in_data}) | {examples} |")
    done = {record_key(r) for r in runs}
    missing = [j for j in jobs if job_key(j) not in done]
    lines += ["", "## What was not measured", ""]
    if missing:
        groups = {}
        for j in missing:
            groups.setdefault((j.group, j.name, j.steps), []).append(str(j.seed))
        for (group, name, steps), seeds in groups.items():
            lines.append(f"- {label(name)} at {steps:,} steps, seed{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(seeds)}")
        lines.append("")
        lines.append("Run the tool again to measure them (it skips the recorded runs).")
    else:
        lines.append("Every job of the plan was measured.")
    lines += ["", "## Run time", "",
              "Wall seconds of one run (training, evaluation, sampling), two runs at a time on "
              "the machine above while other programs ran too: a guide, not a benchmark.", "",
              "| run | steps | runs | wall s per run, mean (min–max) |", "|---|---:|---:|---:|"]
    walls = {}
    for r in runs:
        walls.setdefault((r["name"], r["num_steps"]), []).append(r["wall_s"])
    for (name, steps), values in walls.items():
        s = stats(values)
        lines.append(f"| {label(name)} | {steps:,} | {s.n} | {s.mean:.1f} "
                     f"({s.min:.1f}–{s.max:.1f}) |")
    wall = sum(r["wall_s"] for r in runs)
    lines += ["", f"{len(runs)} runs, {wall / 3600:.1f} hours of run time in all."]
    return "\n".join(lines) + "\n"


def factorial_lines(runs):
    """The 2 x 2 of stage 3: attention beyond the current position x position embeddings."""
    cells = [("stage3", "ladder", "attention and position embeddings (stage 3)"),
             ("s3_no_position", "ablation", "attention, no position embeddings"),
             ("s3_attention_current", "ablation", "position embeddings, attention on the current "
              "position only"),
             ("s3_no_context", "ablation", "neither: the next letter from the current one")]
    lines = ["", "## Stage 3: where the context comes from", "",
             "Attention and position embeddings can stand in for each other (attention without "
             "positions still averages over the earlier letters; positions without attention "
             "still tell the model how far into the name it is), so they are measured together: "
             "the four combinations, each with seeds " + ", ".join(map(str, SEEDS)) + ". Val loss "
             "mean ± std (min–max); the last row of each budget is the MLP of stages 1 and 2 "
             "for comparison.", "", "| steps | model | val loss | difference to stage 3, mean "
             "(per-seed min to max) |", "|---:|---|---:|---:|"]
    for steps in (SHORT, LONG):
        for name, group, title in cells:
            values = val_by_seed(runs, group, name, steps)
            found = comparison(runs, name, steps) if group == "ablation" else None
            diff = (f"{found[2].mean:+.4f} ({found[2].min:+.4f} to {found[2].max:+.4f})"
                    if found else "-")
            val = fmt_stats(stats(list(values.values()))) if values else "not measured"
            lines.append(f"| {steps:,} | {title} | {val} | {diff} |")
        two = val_by_seed(runs, "ladder", "stage2", steps) or val_by_seed(runs, "ladder",
                                                                          "stage1", steps)
        val = fmt_stats(stats(list(two.values()))) if two else "not measured"
        lines.append(f"| {steps:,} | stages 1 and 2 (the MLP on the current letter) | {val} | - |")
    return lines


def demo_lines(runs):
    """The attention demo: stage 3 on strings written twice."""
    full = {r["seed"]: r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")}
    current = val_by_seed(runs, "demo", DEMOS[1].name, DEMO_STEPS)
    lines = ["", "## The attention demo: strings written twice", "",
             f"Stage 3 trained on [data/repeats.txt](../../data/repeats.txt) "
             f"(`tools/build_repeats.py`: three random letters written twice, `qxdqxd`) for "
             f"{DEMO_STEPS:,} steps with `{' '.join(DEMO_SETTINGS)}`, and the same with attention "
             "restricted to the current position. The second half of a string is a copy of the "
             "first, so only a model that looks back can predict it. 'Largest weight' is the "
             "largest attention weight of a query that must look back (the positions predicting "
             "the copied letters), 'on the match' its weight on the position of the letter to "
             "copy; both are means over the 300 held-out strings. Run from "
             "`tools/attention_probe.py`, appended to the script.", "",
             "![attention demo](attention_demo.png)", "",
             "| seed | val loss, stage 3 | val loss, current position only | largest weight | "
             "on the match |", "|---:|---:|---:|---:|---:|"]
    for seed in SEEDS:
        run = full.get(seed)
        if run is None or seed not in current:
            lines.append(f"| {seed} | not measured | - | - | - |")
            continue
        lines.append(f"| {seed} | {run['val_loss']:.4f} | {current[seed]:.4f} | "
                     f"{run['attention']['max_weight']:.4f} | {run['attention']['on_match']:.4f} |")
    fig = figures({"runs": runs})
    if "demo.floor" in fig:
        lines += ["", f"A model that copies perfectly still has to guess the first half: "
                  f"{fig['demo.length']} uniform guesses among 26 letters in the "
                  f"{2 * fig['demo.length'] + 1} predictions of a string, "
                  f"{fig['demo.floor']:.4f} nats; a model that cannot look back guesses twice "
                  f"as many, {2 * fig['demo.floor']:.4f}."]
    return lines


def render_figures(results, num_train):
    """{path: PNG bytes} of the two figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    runs = results["runs"]
    pngs = {}
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
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
        pngs[LADDER_PNG] = png_bytes(fig, plt)

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
        pngs[ABLATIONS_PNG] = png_bytes(fig, plt)
        demo = [r for r in runs if r["name"] == DEMOS[0].name and r.get("attention")]
        if demo:
            pngs[DEMO_PNG] = demo_figure(runs, min(demo, key=lambda r: r["seed"]), plt)
    return pngs


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


def rendered(results, num_train):
    """{path: bytes} of every generated file but results.json."""
    files = {README: render_readme(results, num_train).encode("utf-8")}
    for a in ABLATIONS:
        if a.edits:
            files[DIFF_DIR / f"{a.name}.diff"] = ablation_diff(a).encode("utf-8")
    files.update(render_figures(results, num_train))
    return files


def render():
    if not RESULTS.exists():
        benchmark.fail(f"{RESULTS.relative_to(stages.ROOT)} is missing: run python {TOOL}")
    num_train = data_split()[2]
    for path, content in rendered(load_results(), num_train).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
            print(f"wrote {path.relative_to(stages.ROOT)}")


def check():
    """Raise Stale unless results.json measured today's scripts, patches and settings for jobs
    of the plan, and every generated file is what results.json renders to."""
    if not RESULTS.exists():
        raise Stale(f"{RESULTS.relative_to(stages.ROOT)} is missing: run python {TOOL}")
    results = load_results()
    num_train = data_split()[2]
    jobs = plan(num_train)
    fresh = fresh_runs(results["runs"], jobs)
    if len(fresh) != len(results["runs"]):
        stale = [r for r in results["runs"] if r not in fresh][0]
        raise Stale(f"results.json has a run of {stale['name']} ({stale['num_steps']} steps, seed "
                    f"{stale['seed']}) that is not in the plan or measured another version of "
                    f"its script or settings: rerun python {TOOL}")
    for path, content in rendered(results, num_train).items():
        if not path.exists() or path.read_bytes() != content:
            raise Stale(f"{path.relative_to(stages.ROOT)} is out of date: run python {TOOL} "
                        "--render")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = lambda message: benchmark.fail(f"{message} (see --help)")
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
    try:
        if opts.check:
            check()
            print("benchmarks/experiments is up to date")
        elif opts.render:
            render()
        elif opts.quotes:
            for key, text in quotes().items():
                print(f"{key}: {text}")
        elif opts.plan:
            jobs = plan()
            todo = pending(jobs)[1]
            for job in todo:
                print(f"{job.name:<18} {job.steps:>6} steps  seed {job.seed}  "
                      f"~{estimate_s(job):.0f} s")
            total = sum(estimate_s(job) for job in todo)
            print(f"{len(todo)} of {len(jobs)} jobs to run: about {total / 60:.0f} minutes of "
                  f"run time, {total / opts.jobs / 60:.0f} minutes {opts.jobs} at a time")
        else:
            if opts.jobs < 1:
                benchmark.fail(f"--jobs must be at least 1, got {opts.jobs}")
            run_plan(opts.jobs)
            render()
    except (Stale, ValueError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
