"""Measure what each concept buys: the six stage scripts over seeds and budgets, ablations of
stage 3 and of the full model, and the attention demo. Writes in benchmarks/experiments/
results.json (every run: its job and settings, val loss, train loss of the last 50 steps,
samples and how many are names of the data, wall time, and the SHA-256 of the script that ran
and of its code, stages.script_code, which --check compares), then what it renders to through
tools/experiments_report.py: figures.json (every figure prose quotes as {{exp:KEY}}), README.md
(its tables), ladder.png, ablations.png, attention_demo.png and ablations/<name>.diff.

It reads the stage scripts, data/names.txt, data/repeats.txt (the attention demo's strings
written twice), tools/attention_probe.py (appended to the demo's script) and the ablations of
tools/templates/ablations.toml. A job runs a copy of a stage script (an ablation: with exact
text edits) as a subprocess in a temporary directory, two at a time, in the order of plan().

    python tools/experiments.py           # run every job not yet recorded, then render (hours;
                                          # stop it any time and run it again: each run is
                                          # written to results.json as it ends)
    python tools/experiments.py --plan    # the jobs still to run and an estimate of the time
    python tools/experiments.py --render  # only rewrite the files results.json renders to
    python tools/experiments.py --check   # run and write nothing; exit 1 if results.json
                                          # measured other code or settings, or a file differs
                                          # from what results.json renders to
"""
import argparse
import concurrent.futures
import functools
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import stages
from experiments_report import (ABLATION_BY_NAME, ABLATION_LONG, DEMOS, DEMO_STEPS, FACTORIAL,
                                FULL_ABLATIONS, FULL_STAGE, LONG, NUM_SAMPLES, OUT_DIR, RESULTS,
                                SEEDS, SHORT, STAGE3_ABLATIONS, TOOL, Job, job_of, patch,
                                rendered)

DATA = stages.ROOT / "data" / "names.txt"
DEMO_DATA = stages.ROOT / "data" / "repeats.txt"   # the attention demo's strings written twice
PROBE = Path(__file__).with_name("attention_probe.py")
WORKERS = 2   # runs at a time
# Rough wall seconds per training step of each stage, run alone on the 2-core machine, for --plan
SECONDS_PER_STEP = {0: 0.0001, 1: 0.0045, 2: 0.016, 3: 0.025, 4: 0.029, 5: 0.030}
SECONDS_PER_RUN = 5   # start-up, evaluation on 300 names, 50 samples


def data_split():
    """(training names, all names of the data file, number of training names), as stage 0's own
    code splits them."""
    ns = stages.load_stage(0, [f"--data_path={DATA}"])
    return set(ns["train_docs"]), set(ns["docs"]), len(ns["train_docs"])


def plan(num_train=None):
    """Every job, in the order they run: the ladder at SHORT (and stage 0 for one epoch of
    num_train steps), the full model's ablations at SHORT, the ladder at LONG (not stage 2: it
    computes what stage 1 computes, to 1e-9 in tests/test_math.py), the full model and its
    ablations at ABLATION_LONG, then at LONG, stage 3's factorial at LONG, the attention demo,
    and stage 3's ablations at SHORT."""
    num_train = num_train or data_split()[2]
    ladder = lambda numbers, steps: [Job("ladder", f"stage{k}", k, steps, seed)
                                     for k in numbers for seed in SEEDS]
    ablation = lambda names, steps, group="ablation": [
        Job(group, name, ABLATION_BY_NAME[name].stage, steps, seed)
        for name in names for seed in SEEDS]
    every, full = range(len(stages.STAGE_FILES)), [a.name for a in FULL_ABLATIONS]
    return (ladder(every, SHORT) + ladder([0], num_train) + ablation(full, SHORT)
            + ladder([k for k in every if k != 2], LONG)
            + (ladder([FULL_STAGE], ABLATION_LONG) if ABLATION_LONG != LONG else [])
            + ablation(full, ABLATION_LONG) + ablation(full + FACTORIAL, LONG)
            + ablation([d.name for d in DEMOS], DEMO_STEPS, "demo")
            + ablation([a.name for a in STAGE3_ABLATIONS], SHORT))


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
    """SHA-256 of what a script computes: a comment or docstring edit leaves it alone."""
    return sha256_text(stages.script_code(text))


@functools.cache
def job_code_sha256(group, name, stage):
    """code_sha256 of the script that jobs of (group, name, stage) run today."""
    return code_sha256(job_script(Job(group, name, stage, 0, 0))[1])


def parse_output(out, demo=False):
    """num_params, train_loss_last50, val_loss and samples from what a stage script printed,
    and for the demo what tools/attention_probe.py printed."""
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
        load_before = os.getloadavg()[0]
        code, out, err, wall, usage = stages.run_child(
            [sys.executable, name, *settings, f"--data_path={data}"], cwd=tmp)
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
    order = {job: i for i, job in enumerate(jobs)}
    runs = sorted(runs, key=lambda r: order.get(job_of(r), len(order)))
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
    """The runs that measured a job of the plan with today's code and settings."""
    jobs = set(jobs)
    return [run for run in runs if (job := job_of(run)) in jobs
            and run["code_sha256"] == job_code_sha256(job.group, job.name, job.stage)
            and run["settings"] == job_settings(job)]


def pending(jobs):
    """(fresh runs recorded, jobs of the plan still to run)."""
    runs = fresh_runs(load_results()["runs"] if RESULTS.exists() else [], jobs)
    done = set(map(job_of, runs))
    return runs, [job for job in jobs if job not in done]


def run_plan(dry=False):
    """Run the jobs of the plan not recorded yet, saving each run as it ends (dry: list them)."""
    train_names, data_names, num_train = data_split()
    jobs = plan(num_train)
    runs, todo = pending(jobs)
    seconds = [SECONDS_PER_STEP[job.stage] * job.steps * (1 + ("--n_layer=2" in job_settings(job)))
               + SECONDS_PER_RUN for job in todo]
    for job, estimate in zip(todo, seconds) if dry else []:
        print(f"{job.name:<18} {job.steps:>6} steps  seed {job.seed}  ~{estimate:.0f} s")
    print(f"{len(runs)} of {len(jobs)} jobs recorded; {len(todo)} to run, {WORKERS} at a time: "
          f"about {sum(seconds) / WORKERS / 60:.0f} minutes if nothing else runs", flush=True)
    if dry:
        return
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = [pool.submit(run_job, job, train_names, data_names) for job in todo]
        for i, future in enumerate(concurrent.futures.as_completed(futures), 1):
            run = future.result()
            runs.append(run)
            save_results(runs, jobs)
            result = run.get("error") or f"val {run['val_loss']:.4f}"
            print(f"[{i}/{len(todo)} {(time.perf_counter() - start) / 60:.0f} min] {run['name']} "
                  f"{run['num_steps']} steps seed {run['seed']}: {result}, {run['wall_s']} s",
                  flush=True)


def render(check=False):
    """Write the files results.json renders to; with check, write nothing and raise a
    CourseError unless results.json measured today's code and settings for jobs of the plan
    and every file is what it renders to."""
    results, num_train = load_results(), data_split()[2]
    jobs = plan(num_train)
    fresh = fresh_runs(results["runs"], jobs) if check else results["runs"]
    stale = [r for r in results["runs"] if r not in fresh]
    if stale:
        raise stages.CourseError(
            f"results.json has a run of {stale[0]['name']} ({stale[0]['num_steps']} steps, seed "
            f"{stale[0]['seed']}) that is not in the plan or measured another version of its "
            f"script or settings: rerun python {TOOL}")
    for path, content in rendered(results, jobs, num_train).items():
        if path.exists() and path.read_bytes() == content:
            continue
        if check:
            raise stages.CourseError(f"{path.relative_to(stages.ROOT)} is out of date: run "
                                     f"python {TOOL} --render")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        print(f"wrote {path.relative_to(stages.ROOT)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="run and write nothing; exit 1 if a generated file is stale")
    mode.add_argument("--render", action="store_true", help="only rewrite the generated files")
    mode.add_argument("--plan", action="store_true", help="list the jobs still to run")
    opts = parser.parse_args()
    if opts.check:
        render(check=True)
        print("benchmarks/experiments is up to date")
    elif opts.plan:
        run_plan(dry=True)
    else:
        if not opts.render:
            run_plan()
        render()


if __name__ == "__main__":
    stages.run(main)
