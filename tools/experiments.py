"""Measure what each concept buys: the six stage scripts over seeds and budgets, ablations of
stage 3 and of the full model, and the attention demo. Writes benchmarks/experiments/
results.json (every run: its job, settings, losses, samples, wall time, and the SHA-256 of the
script that ran and of its code, stages.script_code), then through tools/experiments_report.py
what it renders to: figures.json (every figure prose quotes as {{exp:KEY}}), README.md,
ladder.png, ablations.png, attention_demo.png and ablations/<name>.diff.

Reads the stage scripts, data/names.txt, data/repeats.txt (the attention demo's strings written
twice), tools/attention_probe.py (appended to the demo's script) and
tools/templates/ablations.toml. A job runs a copy of a stage script (an ablation: with exact
text edits) in a temporary directory, two at a time, in the order of plan().

    python tools/experiments.py           # run every job not yet recorded, then render (hours;
                                          # resumable: each run is kept as it ends)
    python tools/experiments.py --plan    # list the jobs still to run
    python tools/experiments.py --render  # only rewrite the files results.json renders to
    python tools/experiments.py --check   # write nothing; exit 1 if results.json measured
                                          # other code or settings, or a file is stale
"""
import argparse
import concurrent.futures
import functools
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


def data_split():
    """(training names, all names of the data file, number of training names), as stage 0's own
    code splits them."""
    ns = stages.load_stage(0, [f"--data_path={DATA}"])
    return set(ns["train_docs"]), set(ns["docs"]), len(ns["train_docs"])


def plan(num_train=None):
    """Every job, in the order they run. Stage 2 is not run at LONG: it computes what stage 1
    computes, to 1e-9 in tests/test_math.py."""
    num_train = num_train or data_split()[2]
    ladder = lambda numbers, steps: [Job("ladder", f"stage{k}", k, steps, seed)
                                     for k in numbers for seed in SEEDS]
    ablation = lambda names, steps, group="ablation": [
        Job(group, name, ABLATION_BY_NAME[name].stage, steps, seed)
        for name in names for seed in SEEDS]
    every, full = range(len(stages.STAGE_FILES)), [a.name for a in FULL_ABLATIONS]
    return (ladder(every, SHORT) + ladder([0], num_train) + ablation(full, SHORT)
            + ladder([k for k in every if k != 2], LONG)
            + ladder([FULL_STAGE], ABLATION_LONG)
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


@functools.cache
def code_sha256(text):
    """SHA-256 of what a script computes: a comment or docstring edit leaves it alone."""
    return stages.sha256(stages.script_code(text))


def parse_output(out, demo=False):
    """num_params, train_loss_last50, val_loss and samples from what a stage script printed,
    and for the demo what tools/attention_probe.py printed."""
    row = stages.parse_output(out, ("num_params", "train_loss_last50", "val_loss"))
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
           "seed": job.seed, "settings": settings, "script": name, "sha256": stages.sha256(text),
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
    except (ValueError, stages.CourseError) as e:
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
    if RESULTS.exists() and "carried_over" in (old := load_results()):   # older runs
        data["carried_over"] = old["carried_over"]
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def fresh_runs(runs, jobs):
    """The runs that measured a job of the plan with today's code and settings."""
    jobs = set(jobs)
    return [run for run in runs if (job := job_of(run)) in jobs
            and run["code_sha256"] == code_sha256(job_script(job)[1])
            and run["settings"] == job_settings(job)]


def run_plan(dry=False):
    """Run the jobs of the plan not recorded yet, saving each run as it ends (dry: list them)."""
    train_names, data_names, num_train = data_split()
    jobs = plan(num_train)
    runs = fresh_runs(load_results()["runs"] if RESULTS.exists() else [], jobs)
    done = set(map(job_of, runs))
    todo = [job for job in jobs if job not in done]
    for job in todo if dry else []:
        print(f"{job.name:<18} {job.steps:>6} steps  seed {job.seed}")
    print(f"{len(runs)} of {len(jobs)} jobs recorded; {len(todo)} to run, {WORKERS} at a time",
          flush=True)
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
