"""Measure the stage scripts of the working tree. Generates benchmarks/results.json (--full),
seeds.json (--seeds), the text of benchmarks/profile.txt (--profile) and the golden losses
tests/fixtures/per_step_losses.json (--losses); reads the stage scripts and data/names.txt.
Comparisons with older revisions are finished records: benchmarks/engine.json, paired.json,
reference.json (see benchmarks/README.md).

    python tools/benchmark.py --stages 2 5 --steps 50 --args="--n_embd=8"   # s/step, memory
    python tools/benchmark.py --profile 5 --steps 10 > benchmarks/profile.txt   # top 15
    python tools/benchmark.py --full              # each script at its defaults (3 minutes)
    python tools/benchmark.py --seeds 1 2 3 4 5 6 7 8 9 10   # every stage, about 10 minutes
    python tools/benchmark.py --losses            # every loss of 20 small steps per stage

A step: a worker subprocess runs the script's sections before `# === training ===`, then times
the script's own functions as its training loop calls them, in CPU seconds: forward (stage 1:
with its backprop by hand), backward, update, and freeing the previous step's graph. Stage 0's
training section is timed whole. Peak memory: the worker's maximum resident set size.
"""
import argparse
import concurrent.futures
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

import stages
from stages import CourseError

TOOL = "tools/benchmark.py"
BENCH_DIR = stages.ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results.json"
SEEDS = BENCH_DIR / "seeds.json"
LOSSES = stages.ROOT / "tests" / "fixtures" / "per_step_losses.json"
DATA = stages.ROOT / "data" / "names.txt"
LOSS_SETTINGS = [["--num_steps=20", "--seed=42", *["--n_embd=8", "--block_size=8", "--n_head=2"][
    :sizes]] for sizes in (0, 1, 1, 2, 3, 3)]   # the golden losses: 20 small steps per stage


# ---------------------------------------------------------------- worker (runs in a subprocess)
def time_steps(stage, g, steps):
    """Per-step (forward, backward, update, free) CPU times in seconds of the stage's own
    functions on its first `steps` training names, as its training loop calls them."""
    clock, rows, loss = time.process_time, [], None
    for step in range(steps):
        tokens = g["encode"](g["train_docs"][step % len(g["train_docs"])])
        lr_t = g["learning_rate"] * (1 - step / steps)
        t0 = clock()
        if stage == 1:   # no graph: the backward pass is done by hand, inside "forward"
            new_loss, grads = g["doc_loss_and_grads"](tokens)
        else:
            new_loss = g["doc_loss"](tokens)
        t1 = clock()
        # as in the training loop, the previous step's graph stayed alive while this one was
        # built (the cyclic garbage collector scans both); rebinding `loss` frees it
        loss = new_loss
        t2 = clock()
        if stage > 1:
            loss.backward()
        t3 = clock()
        if stage == 1:
            g["sgd_update"](grads, lr_t)
        else:
            g["adam_update"](lr_t, step) if "adam_update" in g else g["sgd_update"](lr_t)
        rows.append((t1 - t0, None if stage == 1 else t3 - t2, clock() - t3, t2 - t1))
        del new_loss
    return rows


def run_worker(spec):
    """Benchmark one stage as `spec` says; returns a JSON-able dict."""
    stage, steps = spec["stage"], spec["steps"]
    g = stages.load_stage(stage, spec["args"])
    profiler = cProfile.Profile() if spec["profile"] else contextlib.nullcontext()
    wall_start = time.perf_counter()
    with profiler:   # a cProfile.Profile profiles inside its with-block
        if stage == 0:   # no step function to call: time the whole counting loop
            start = time.process_time()
            with contextlib.redirect_stdout(io.StringIO()):
                exec(stages.section_code(0, "training"), g)
            steps = len(g["losses"])
            rows = [((time.process_time() - start) / steps, None, None, 0.0)]
        else:
            rows = time_steps(stage, g, steps)
    wall = time.perf_counter() - wall_start
    means = [None if rows[0][k] is None else sum(r[k] for r in rows) / len(rows) for k in range(4)]
    result = {"stage": stage, "file": stages.STAGE_FILES[stage], "args": spec["args"],
              "sha256": stages.sha256(stages.stage_path(stage)), "steps": steps,
              "s_per_step": sum(m for m in means if m is not None),
              **dict(zip(["forward_s", "backward_s", "update_s", "free_s"], means)),
              "wall_s_per_step": wall / steps,
              "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}   # kB on Linux
    if spec["profile"]:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(15)
        result["profile"] = out.getvalue()
    return result


# ---------------------------------------------------------------- parent side
def bench_stage(stage, steps, args=(), profile=False):
    """Benchmark stage script `stage` in a fresh worker subprocess; returns its dict."""
    spec = {"stage": stage, "steps": steps, "profile": profile,
            "args": [f"--num_steps={steps}", *args]}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    code, out, err, _, _ = stages.run_child(command, cwd=stages.ROOT)
    if code != 0:
        last = (err.strip().splitlines() or ["(no message)"])[-1].removeprefix("error: ")
        raise CourseError(f"stage {stage} worker failed: {last}")
    return json.loads(out.strip().splitlines()[-1])


def full_run(stage, root=stages.ROOT, flags=()):
    """Run stage script `stage` in `root` at its defaults (changed by flags, --name=value);
    returns its figures. train_time_s: the last progress line's mean ms/step (wall clock, from
    the first step to the last) times the steps."""
    path = stages.stage_path(stage, root)
    load_before = os.getloadavg()[0]
    code, out, err, wall, usage = stages.run_child([sys.executable, path.name, *flags], root)
    if code != 0:
        last = (err.strip().splitlines() or ["(no message)"])[-1].removeprefix("error: ")
        raise CourseError(f"{path.name} failed: {last}")
    lines = path.read_text(encoding="utf-8").splitlines()
    row = {"stage": stage, "file": path.name, "sha256": stages.sha256(path),
           "lines": sum(1 for line in lines if line.strip())}   # non-blank lines
    row.update(stages.parse_output(out))
    steps = int(re.findall(r"^step +\d+ / (\d+) ", out, re.MULTILINE)[-1])
    row.update(train_time_s=round(row["ms_per_step"] * steps / 1000, 2), wall_s=round(wall, 2),
               cpu_s=round(usage.ru_utime + usage.ru_stime, 2), peak_rss_kb=usage.ru_maxrss,
               output=out,   # what a learner sees, quoted in the README
               # other programs running at the same time slow the wall clock, not the CPU time
               load_avg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    print(f"  {path.name} {' '.join(flags)}: {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU,"
          f" last 50 {row['train_loss_last50']}, val {row['val_loss']}", flush=True)
    return row


def print_rows(rows, label):
    print(*[label] if label else [], f"{'stage':<27}" + "".join(
        f"{name:>9}" for name in ("s/step", "forward", "backward", "update", "free", "peak MB")),
        sep="\n")
    for r in rows:
        print(f"{r['file']:<27}" + "".join("        -" if r[key] is None else f"{r[key]:>9.3g}" for
              key in ("s_per_step", "forward_s", "backward_s", "update_s", "free_s"))
              + f"{r['peak_rss_kb'] / 1024:>9.1f}")


def write_json(path, data):
    stages.write_or_check(path, json.dumps(data, indent=1) + "\n", False, [])
    print(f"wrote {path.relative_to(stages.ROOT)}")


def do_seeds(seeds, jobs):
    """Run each stage at its defaults once per seed (`jobs` runs at a time); write seeds.json.
    The last-50 train loss averages the losses of 50 training names, and which 50 depends on
    the seed (it shuffles the names): one seed is one draw, the spread over seeds shows how
    far a single figure can be trusted."""
    runs = [(stage, seed) for stage in range(len(stages.STAGE_FILES)) for seed in seeds]
    print(f"{len(runs)} runs, {jobs} at a time ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(lambda run: full_run(run[0], flags=[
            f"--seed={run[1]}", "--num_samples=0"]), runs))   # no samples: nothing to read
    by_stage = {}
    for (stage, seed), row in zip(runs, rows):
        by_stage.setdefault(stage, {"stage": stage, "file": row["file"], "sha256": row["sha256"],
                                    "runs": []})["runs"].append(
            {"seed": seed, "train_loss_last50": row["train_loss_last50"],
             "val_loss": row["val_loss"]})
    write_json(SEEDS, {"generated": f"by {TOOL} --seeds; do not edit: rerun the tool",
                       "machine": stages.machine_info(), "seeds": list(seeds),
                       "stages": list(by_stage.values())})


def training_losses(stage, settings, root=stages.ROOT):
    """Every per-step loss of stage `stage`'s own training section, run from the script in root
    with the settings, on data/names.txt, at full precision."""
    g = stages.load_stage(stage, [f"--data_path={DATA}", *settings], "training", root)
    with contextlib.redirect_stdout(io.StringIO()):
        exec(stages.section_code(stage, "training", root), g)
    return g["losses"]


def do_losses():
    """Write the golden losses, keeping the old file's note on their history if none changed."""
    rows = [{"stage": stage, "file": stages.STAGE_FILES[stage],
             "sha256": stages.sha256(stages.stage_path(stage)), "settings": LOSS_SETTINGS[stage],
             "losses": training_losses(stage, LOSS_SETTINGS[stage])} for stage in range(6)]
    old = json.loads(LOSSES.read_text(encoding="utf-8")) if LOSSES.exists() else {}
    same = [row["losses"] for row in old.get("stages", [])] == [row["losses"] for row in rows]
    git = subprocess.run(["git", "-C", stages.ROOT, "rev-parse", "HEAD"], capture_output=True)
    write_json(LOSSES, {"command": f"python {TOOL} --losses", "commit": git.stdout.decode()[:40],
                        "data": "data/names.txt", "history": old.get("history") if same else None,
                        "stages": rows})


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--stages", type=int, nargs="+", choices=range(6), metavar="N", default=range(6),
        help="stages to measure, 0-5 (default: all; --seeds measures all)")
    add("--steps", type=int, default=20, help="steps per stage (default: 20)")
    add("--args", default="", help='extra settings for the scripts, e.g. --args="--n_embd=8"')
    add("--jobs", type=int, default=os.cpu_count() or 1,
        help="runs at a time for --seeds (default: the number of CPUs)")
    mode = parser.add_mutually_exclusive_group().add_argument
    mode("--profile", type=int, choices=range(6), metavar="STAGE",
         help="print a cProfile (top 15 by own time) of --steps steps of STAGE")
    mode("--full", action="store_true", help="each script at its defaults: results.json")
    mode("--seeds", type=int, nargs="+", metavar="S", help="each script at its defaults with "
         "--seed=S for each S: seeds.json")
    mode("--losses", action="store_true", help="write the golden per-step losses")
    mode("--worker", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.worker:
        return print(json.dumps(run_worker(json.loads(opts.worker))))
    try:
        extra = shlex.split(opts.args)
    except ValueError as e:
        raise CourseError(f"--args: {e}") from None
    if opts.steps < 1 or opts.jobs < 1:
        raise CourseError("--steps and --jobs must be at least 1")
    if (opts.full or opts.seeds or opts.losses) and extra:
        raise CourseError("--full, --seeds and --losses take no --args: their settings are fixed")
    if opts.full:
        write_json(RESULTS, {"generated": f"by {TOOL} --full; do not edit: rerun the tool",
                             "machine": stages.machine_info(),
                             "stages": [full_run(stage) for stage in opts.stages]})
    elif opts.seeds:
        if len(set(opts.seeds)) != len(opts.seeds):
            raise CourseError("--seeds: each seed once")
        do_seeds(opts.seeds, opts.jobs)
    elif opts.losses:
        do_losses()
    elif opts.profile is not None:
        result = bench_stage(opts.profile, opts.steps, extra, profile=True)
        command = " ".join(["python", TOOL, *sys.argv[1:]])
        machine = stages.machine_line(stages.machine_info())
        print(f"cProfile of {result['file']}, {opts.steps} steps, by `{command}`\n"
              f"on {machine}; times include the profiler's overhead")
        print_rows([result], "")
        print(result["profile"].strip("\n"))
    else:
        print_rows([bench_stage(stage, opts.steps, extra) for stage in opts.stages],
                   f"{opts.steps} steps per stage")


if __name__ == "__main__":
    stages.run(main)
