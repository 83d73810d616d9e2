"""Measure the six stage scripts: speed per training step, autograd graph size, memory, and
the figures of a full default run. Generates benchmarks/results.json, engine.json, seeds.json
and paired.json, which tools/readme_figures.py turns into the README's tables.

    python tools/benchmark.py                     # every stage, 20 steps: s/step, nodes, memory
    python tools/benchmark.py --stages 2 5 --steps 50 --args="--n_embd=8 --n_head=2"
    python tools/benchmark.py --rev 355af4f       # the scripts as committed at a git revision
    python tools/benchmark.py --profile 5 --steps 10 > benchmarks/profile.txt
                                                  # cProfile of 10 steps of stage 5, top 15
    python tools/benchmark.py --full              # run each script at its defaults: results.json
    python tools/benchmark.py --engine-compare    # before (355af4f) vs after (HEAD): engine.json
                                                  # (reuses recorded full runs of the same script)
    python tools/benchmark.py --seeds 1 2 3 4 5 6 7 8 9 10
                                                  # each script at its defaults but --seed=S:
                                                  # losses per seed, seeds.json (about 10 minutes)
    python tools/benchmark.py --seeds 1 2 3 4 5 6 7 8 9 10 --stages 0
                                                  # re-measure stage 0, keep the other stages'
                                                  # rows if their script still reproduces them
    python tools/benchmark.py --paired            # training loop before issue 9 (091f5ef) vs
                                                  # now, stages 2-5, interleaved: paired.json

Settings are given as the scripts take them (--name=value); for a script from before issue 9
(which took --steps N, --n-embd N, ...) they are translated to its flags.

How a step is measured: a worker subprocess per stage executes the script's sections before
`# === training ===` (so the script builds its own data, model and optimizer; its printing is
discarded), then times the script's own functions, step by step as its training loop does:
forward `loss = doc_loss(encode(doc))`, `loss.backward()`, the update (`sgd_update(lr_t)` or
`adam_update(lr_t, step)`) and freeing the previous step's graph, each in CPU seconds of the
worker (less sensitive than wall time to other programs running; wall time is recorded too).
Stage 1 has no graph: its forward is `doc_loss_and_grads` (manual backprop included) and its
update `sgd_update(grads, lr_t)`.
Stage 0 counts bigrams: its whole training section is timed and divided by its steps.
Nodes per step are counted afterwards on the same names, outside the timing: the Values
reachable from the loss over `_children` (the graph backward() walks), the links between them
(one multiply-add each in backward()) and every Value created during the step.
Peak memory is the worker's maximum resident set size, measured before the counting pass.
Standard library only; Unix (uses the resource module).
"""
import argparse
import concurrent.futures
import contextlib
import cProfile
import hashlib
import io
import json
import os
import platform
import pstats
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import stages

TOOL = "tools/benchmark.py"
BENCH_DIR = stages.ROOT / "benchmarks"
RESULTS = BENCH_DIR / "results.json"
ENGINE = BENCH_DIR / "engine.json"
SEEDS = BENCH_DIR / "seeds.json"
PAIRED = BENCH_DIR / "paired.json"
BEFORE_REV = "355af4f"   # six stage scripts with the straightforward scalar engine
AFTER_REV = "HEAD"
LEAN_REV = "091f5ef"   # the last scripts before issue 9's lean rewrite
GRAPH_STAGES = [2, 3, 4, 5]   # the stages with an autograd engine
OUTPUT_FIELDS = {   # results.json key: pattern in a stage script's output
    "num_params": r"^num params: (\d+)$",
    "train_loss_last50": r"^train loss \(last 50 steps\): ([\d.]+)$",
    "val_loss": r"^val loss: ([\d.]+) ",
    "ms_per_step": r"^step +\d+ / \d+ \| loss [\d.]+ \| ([\d.]+) ms/step \| ETA \d+ s\Z",
}
OLD_FLAGS = {"data_path": "--data", "num_steps": "--steps", "num_samples": "--samples",
             "learning_rate": "--lr"}   # the flags before issue 9; others: '_' -> '-'


def fail(message):
    sys.exit(f"error: {message}")


def script_args(stage, root, settings):
    """The command line that gives stage script `stage` in `root` the settings (a list of
    --name=value): unchanged for the scripts of issue 9, translated to the old flags
    (--steps N, --n-embd N, ...) for a script from before it. Stage 0 before issue 9 counted
    every training name once and had no --steps: num_steps is dropped for it."""
    if "# === settings ===" in stages.read_stage(stage, root):
        return list(settings)
    args = []
    for setting in settings:
        name, _, value = setting.removeprefix("--").partition("=")
        if not (stage == 0 and name == "num_steps"):
            args += [OLD_FLAGS.get(name, "--" + name.replace("_", "-")), value]
    return args


# ---------------------------------------------------------------- worker (runs in a subprocess)
def count_reachable(root):
    """(nodes, edges): distinct nodes reachable from root over _children, root included, and
    the (node, child) links among them, each of which backward() does one multiply-add for.
    Iterative, so a deep graph cannot hit the recursion limit."""
    seen = {id(root)}
    stack = [root]
    edges = 0
    while stack:
        node = stack.pop()
        edges += len(node._children)
        for child in node._children:
            if id(child) not in seen:
                seen.add(id(child))
                stack.append(child)
    return len(seen), edges


def load_stage(stage, root, settings):
    """Globals of stage script `stage` in `root` after executing its sections up to training,
    given the settings (--name=value, see script_args), and its training section compiled."""
    path = stages.stage_path(stage, root)
    args = script_args(stage, root, settings)
    sections = stages.split_sections(stages.read_stage(stage, root))
    names = [name for name, _ in sections]
    if "training" not in names:
        raise SystemExit(f"error: {path.name} has no '# === training ===' section")
    setup = "".join(body for _, body in sections[:names.index("training")])
    training = dict(sections)["training"]
    scope = {"__name__": "__benchmark__", "__file__": str(path)}
    saved_argv = sys.argv
    sys.argv = [str(path), *args]
    # a script skips its command line where ipykernel is loaded (a notebook): hide it, so that
    # the settings apply in a process that imported it for something else (a test run)
    ipykernel = sys.modules.pop("ipykernel", None)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(setup, str(path), "exec"), scope)
    finally:
        sys.argv = saved_argv
        if ipykernel is not None:
            sys.modules["ipykernel"] = ipykernel
    # the training section starts where setup ends: pad so tracebacks show the script's lines
    padded_training = "\n" * setup.count("\n") + training
    return scope, compile(padded_training, str(path), "exec")


def time_steps(stage, g, steps):
    """Per-step (forward, backward, update, free) CPU times in seconds, running the stage's own
    functions on its first `steps` training names, as its training loop does."""
    clock = time.process_time   # CPU time: less sensitive than wall time to other programs
    rows = []
    loss = grads = None
    for step in range(steps):
        tokens = g["encode"](g["train_docs"][step % len(g["train_docs"])])
        lr_t = g["learning_rate"] * (1 - step / steps)
        # As in the training loop, the previous step's graph stays alive while the next one is
        # built (Python's cyclic garbage collector then scans both) and is freed when `loss`
        # is rebound: "free" times that rebinding.
        if stage == 1:
            t0 = clock()
            new_loss, new_grads = g["doc_loss_and_grads"](tokens)
            t1 = clock()
            loss, grads = new_loss, new_grads
            t2 = t3 = clock()   # backward is inside doc_loss_and_grads
            g["sgd_update"](grads, lr_t)
            t4 = clock()
        else:
            t0 = clock()
            new_loss = g["doc_loss"](tokens)
            t1 = clock()
            loss = new_loss
            t2 = clock()
            loss.backward()
            t3 = clock()
            if "adam_update" in g:
                g["adam_update"](lr_t, step)
            else:
                g["sgd_update"](lr_t)
            t4 = clock()
        del new_loss
        rows.append((t1 - t0, t3 - t2, t4 - t3, t2 - t1))
    return rows


def count_nodes(g, steps):
    """(reachable, edges, created): per step, the mean number of Values in the graph of the
    loss, of links between them, and of Values created (parameters excluded)."""
    value_class = g["Value"]
    original_init = value_class.__init__
    created = 0

    def counting_init(self, *args, **kwargs):
        nonlocal created
        created += 1
        original_init(self, *args, **kwargs)

    reachable = 0
    edges = 0
    value_class.__init__ = counting_init
    try:
        for step in range(steps):
            tokens = g["encode"](g["train_docs"][step % len(g["train_docs"])])
            loss = g["doc_loss"](tokens)   # the graph's shape depends on the tokens only
            nodes, links = count_reachable(loss)
            reachable += nodes
            edges += links
            del loss
    finally:
        value_class.__init__ = original_init
    return reachable / steps, edges / steps, created / steps


def run_worker(spec):
    """Benchmark one stage as `spec` says; returns a JSON-able dict."""
    stage = spec["stage"]
    g, training_code = load_stage(stage, spec["root"], spec["args"])
    profiler = cProfile.Profile() if spec.get("profile") else None
    if profiler:
        profiler.enable()
    wall_start = time.perf_counter()
    if stage == 0:   # no step function to call: time the whole counting loop
        start = time.process_time()
        with contextlib.redirect_stdout(io.StringIO()):
            exec(training_code, g)
        total = time.process_time() - start
        steps = len(g["losses"])
        rows = [(total / steps, None, None, 0.0)]
    else:
        steps = spec["steps"]
        rows = time_steps(stage, g, steps)
    wall = time.perf_counter() - wall_start
    if profiler:
        profiler.disable()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # kB on Linux
    means = [None if rows[0][k] is None else sum(r[k] for r in rows) / len(rows) for k in range(4)]
    result = {
        "stage": stage,
        "file": stages.STAGE_FILES[stage],
        "sha256": sha256(stages.stage_path(stage, spec["root"])),
        "args": spec["args"],
        "steps": steps,
        "s_per_step": sum(m for m in means if m is not None),
        "forward_s": means[0],
        "backward_s": means[1],
        "update_s": means[2],
        "free_s": means[3],
        "wall_s_per_step": wall / steps,
        "peak_rss_kb": peak_kb,
        "nodes_per_step": None,
        "edges_per_step": None,
        "created_per_step": None,
    }
    if stage == 0:   # no update function: the loop adds to the counts as it goes
        result["update_s"] = None
    if stage == 1:   # doc_loss_and_grads does the backward pass by hand, inside "forward"
        result["backward_s"] = None
    if stage >= 2:
        counts = count_nodes(g, steps)
        result["nodes_per_step"], result["edges_per_step"], result["created_per_step"] = counts
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(15)
        result["profile"] = out.getvalue()
    return result


# ---------------------------------------------------------------- parent side
def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def count_lines(path):
    """Non-blank lines of a file."""
    return sum(1 for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip())


def machine_info():
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu,
    }


def run_child(command, cwd):
    """Run command; return (returncode, stdout text, stderr text, wall s, usage), usage being
    the child's own resource usage (ru_maxrss: peak RSS in kB; ru_utime, ru_stime: CPU s)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        # wait4 gives this child's own usage; RUSAGE_CHILDREN would mix in earlier children
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (proc.returncode, out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), wall, usage)


def run_training(spec):
    """Worker: the script's own training section, timed in CPU seconds of this process after
    its setup (data, model, optimizer) ran untimed; returns per-step times and every loss."""
    g, training_code = load_stage(spec["stage"], spec["root"], spec["args"])
    wall_start = time.perf_counter()
    start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        exec(training_code, g)
    cpu = time.process_time() - start
    wall = time.perf_counter() - wall_start
    steps = len(g["losses"])
    path = stages.stage_path(spec["stage"], spec["root"])
    return {"stage": spec["stage"], "sha256": sha256(path), "steps": steps,
            "cpu_s_per_step": cpu / steps, "wall_s_per_step": wall / steps, "losses": g["losses"]}


def in_worker(spec):
    """Run run_worker(spec) (or run_training(spec) if spec['mode'] is 'training') in a fresh
    subprocess; returns its dict."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    code, out, err, _, _ = run_child(command, cwd=spec["root"])
    if code != 0:
        last = (err.strip().splitlines() or ["(no message)"])[-1].removeprefix("error: ")
        fail(f"stage {spec['stage']} worker failed: {last}")
    return json.loads(out.strip().splitlines()[-1])


def bench_stage(stage, steps, root=stages.ROOT, args=(), profile=False):
    """Benchmark stage script `stage` in `root` in a fresh worker subprocess; returns its dict.
    args: extra settings (--name=value)."""
    spec = {"stage": stage, "steps": steps, "root": str(root), "profile": profile,
            "args": [f"--num_steps={steps}", *args]}
    return in_worker(spec)


def full_run(stage, root=stages.ROOT, flags=()):
    """Run stage script `stage` in `root` at its defaults (changed by flags, --name=value);
    returns its figures. train_time_s: the last progress line's mean ms/step (wall clock, from
    the first step to the last) times the steps."""
    path = stages.stage_path(stage, root)
    load_before = os.getloadavg()[0]
    code, out, err, wall, usage = run_child([sys.executable, path.name, *flags], cwd=root)
    if code != 0:
        last = (err.strip().splitlines() or ["(no message)"])[-1].removeprefix("error: ")
        fail(f"{path.name} failed: {last}")
    row = {"stage": stage, "file": path.name, "sha256": sha256(path), "lines": count_lines(path)}
    for key, pattern in OUTPUT_FIELDS.items():
        if key == "ms_per_step":   # the last progress line: the mean over the whole run
            lines = [line for line in out.splitlines() if line.startswith("step ")]
            match = re.search(pattern, lines[-1] if lines else "")
        else:
            match = re.search(pattern, out, re.MULTILINE)
        if not match:
            fail(f"{path.name}: no line matching {pattern!r} in its output")
        row[key] = int(match.group(1)) if key == "num_params" else float(match.group(1))
    steps = int(re.findall(r"^step +\d+ / (\d+) ", out, re.MULTILINE)[-1])
    row["train_time_s"] = round(row["ms_per_step"] * steps / 1000, 2)
    row["wall_s"] = round(wall, 2)
    row["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    row["peak_rss_kb"] = usage.ru_maxrss
    row["output"] = out   # what a learner sees, quoted in the README
    # other programs running at the same time slow the wall clock, not the CPU time
    row["load_avg_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return row


@contextlib.contextmanager
def scripts_at(rev):
    """A directory holding the stage scripts as committed at git revision rev (None: this
    repository's working tree), with data/ linked in; yields (directory, full commit hash)."""
    if rev is None:
        yield stages.ROOT, None
        return
    git = ["git", "-C", str(stages.ROOT)]
    found = subprocess.run([*git, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        fail(f"not a git revision here: {rev}")
    commit = found.stdout.strip()
    with tempfile.TemporaryDirectory(prefix="benchmark-") as tmp:
        for name in stages.STAGE_FILES:
            shown = subprocess.run([*git, "show", f"{commit}:{name}"], capture_output=True)
            if shown.returncode != 0:
                fail(f"{name} does not exist at revision {rev}")
            (Path(tmp) / name).write_bytes(shown.stdout)
        os.symlink(stages.ROOT / "data", Path(tmp) / "data")
        yield Path(tmp), commit


def machine_line(machine):
    cpu = f", {machine['cpu']}" if machine.get("cpu") else ""
    return f"{machine['platform']}, Python {machine['python']}, {machine['cpu_count']} CPUs{cpu}"


def fmt(value, spec, missing="-"):
    return missing if value is None else format(value, spec)


def print_rows(rows, label):
    if label:
        print(label)
    print(f"{'stage':<27}{'s/step':>9}{'nodes/step':>11}{'forward':>9}{'backward':>9}"
          f"{'update':>9}{'free':>9}{'peak MB':>8}")
    for r in rows:
        print(f"{r['file']:<27}{r['s_per_step']:>9.3g}{fmt(r['nodes_per_step'], ',.0f'):>11}"
              f"{fmt(r['forward_s'], '.3g'):>9}{fmt(r['backward_s'], '.3g'):>9}"
              f"{fmt(r['update_s'], '.3g'):>9}{r['free_s']:>9.3g}{r['peak_rss_kb'] / 1024:>8.1f}")


def write_json(path, data):
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(stages.ROOT)}")


def do_full(stage_list):
    rows = []
    for stage in stage_list:
        print(f"running {stages.STAGE_FILES[stage]} at its defaults ...", flush=True)
        row = full_run(stage)
        print(f"  {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, "
              f"val loss {row['val_loss']}, peak {row['peak_rss_kb'] / 1024:.1f} MB", flush=True)
        rows.append(row)
    write_json(RESULTS, {
        "generated": f"by {TOOL} --full; do not edit: rerun the tool",
        "machine": machine_info(),
        "stages": rows,
    })


def seed_run(stage, seed):
    """One default run of stage `stage` with this seed and no samples: (train last 50, val)."""
    row = full_run(stage, flags=[f"--seed={seed}", "--num_samples=0"])
    print(f"  {row['file']} --seed={seed}: last 50 {row['train_loss_last50']:.4f}, "
          f"val {row['val_loss']:.4f}", flush=True)
    return row


def kept_seed_rows(seeds, stage_list, jobs):
    """The rows of seeds.json for the stages not in stage_list, kept from the recorded file.
    A row measured on another version of its script is kept only if the current script, run
    with the first seed, prints the same two losses as recorded: one run instead of ten. The
    row then carries the current script's SHA-256, the one it was measured on
    (measured_sha256) and the seed that confirmed it (confirmed_by_seed)."""
    others = [stage for stage in range(len(stages.STAGE_FILES)) if stage not in stage_list]
    if not others:
        return {}
    if not SEEDS.exists():
        fail(f"--stages: {SEEDS.relative_to(stages.ROOT)} is missing: no other stage to keep")
    recorded = json.loads(SEEDS.read_text(encoding="utf-8"))
    if recorded["seeds"] != list(seeds):
        fail(f"--stages: seeds.json has seeds {recorded['seeds']}: give the same seeds")
    rows = {row["stage"]: row for row in recorded["stages"]}
    to_confirm = [stage for stage in others
                  if rows[stage]["sha256"] != sha256(stages.stage_path(stage))]
    print(f"keeping stages {others}; confirming {to_confirm} with --seed={seeds[0]} ...",
          flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        runs = list(pool.map(lambda stage: seed_run(stage, seeds[0]), to_confirm))
    for stage, run in zip(to_confirm, runs):
        old = rows[stage]
        first = old["runs"][0]
        now = (run["train_loss_last50"], run["val_loss"])
        if now != (first["train_loss_last50"], first["val_loss"]):
            fail(f"{old['file']} --seed={seeds[0]} now gives {now}, recorded "
                 f"{(first['train_loss_last50'], first['val_loss'])}: re-measure it (--stages)")
        rows[stage] = {**old, "sha256": run["sha256"],
                       "measured_sha256": old.get("measured_sha256", old["sha256"]),
                       "confirmed_by_seed": seeds[0],
                       "measured_on": old.get("measured_on", machine_line(recorded["machine"]))}
    return {stage: rows[stage] for stage in others}


def do_seeds(seeds, stage_list, jobs):
    """Run each stage at its defaults once per seed (`jobs` runs at a time); write seeds.json.
    The last-50 train loss averages the losses of 50 training names, and which 50 depends on
    the seed (it shuffles the names): one seed is one draw, the spread over seeds shows how
    far a single figure can be trusted. Stages not in stage_list are kept (kept_seed_rows)."""
    kept = kept_seed_rows(seeds, stage_list, jobs)
    runs = [(stage, seed) for stage in stage_list for seed in seeds]
    print(f"{len(runs)} runs, {jobs} at a time ...", flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        rows = list(pool.map(lambda run: seed_run(*run), runs))
    measured = {}
    for stage in stage_list:
        mine = [(seed, row) for (s, seed), row in zip(runs, rows) if s == stage]
        measured[stage] = {
            "stage": stage,
            "file": stages.STAGE_FILES[stage],
            "sha256": mine[0][1]["sha256"],
            "runs": [{"seed": seed, "train_loss_last50": row["train_loss_last50"],
                      "val_loss": row["val_loss"]} for seed, row in mine],
        }
    by_stage = {**kept, **measured}
    write_json(SEEDS, {
        "generated": f"by {TOOL} --seeds; do not edit: rerun the tool",
        "machine": machine_info(),
        "seeds": list(seeds),
        "stages": [by_stage[stage] for stage in sorted(by_stage)],
    })


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def do_paired(steps, reps, stage_list, rev=LEAN_REV):
    """The training loop of each stage as committed at rev (before issue 9) and now, at the
    same settings (the defaults, num_steps=steps), one run at a time, old and new alternately
    (old first in odd repetitions, new first in even ones), so that a slow spell of the
    machine falls on both. Each run is a fresh worker timing the script's own training
    section in CPU seconds; the medians over the repetitions are compared. Also checks that
    both trained to the same losses, step for step."""
    settings = [f"--num_steps={steps}"]
    rows = []
    with scripts_at(rev) as (old_root, commit):
        for stage in stage_list:
            runs = {"old": [], "new": []}
            for rep in range(reps):
                for which in ("old", "new") if rep % 2 == 0 else ("new", "old"):
                    root = old_root if which == "old" else stages.ROOT
                    spec = {"mode": "training", "stage": stage, "root": str(root),
                            "args": settings}
                    runs[which].append(in_worker(spec))
                    print(f"  stage {stage} {which}: "
                          f"{1000 * runs[which][-1]['cpu_s_per_step']:.2f} ms/step", flush=True)
            old_ms = [1000 * run["cpu_s_per_step"] for run in runs["old"]]
            new_ms = [1000 * run["cpu_s_per_step"] for run in runs["new"]]
            loss_diff = max(abs(a - b) for old, new in zip(runs["old"], runs["new"])
                            for a, b in zip(old["losses"], new["losses"]))
            assert all(len(run["losses"]) == steps for run in runs["old"] + runs["new"])
            rows.append({
                "stage": stage, "file": stages.STAGE_FILES[stage],
                "old_sha256": runs["old"][0]["sha256"], "new_sha256": runs["new"][0]["sha256"],
                "old_ms_per_step": old_ms, "new_ms_per_step": new_ms,
                "old_median_ms": median(old_ms), "new_median_ms": median(new_ms),
                "ratio": median(new_ms) / median(old_ms),
                "max_loss_difference": loss_diff,
            })
            print(f"stage {stage}: old {median(old_ms):.2f} ms/step, new {median(new_ms):.2f} "
                  f"ms/step, new / old {rows[-1]['ratio']:.3f}", flush=True)
    write_json(PAIRED, {
        "generated": f"by {TOOL} --paired; do not edit: rerun the tool",
        "machine": machine_info(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "old_rev": rev, "old_commit": commit, "steps": steps, "repetitions": reps,
        "stages": rows,
    })


def do_engine_compare(steps, stage_list):
    """Before/after rows for stage_list, and full default runs of both. A full run already
    recorded for the same script (same SHA-256) in results.json or engine.json is reused:
    delete benchmarks/engine.json to measure the before engine's full runs again."""
    recorded = {}
    if ENGINE.exists():
        old = json.loads(ENGINE.read_text())
        for row in old["before"]["full"] + old["after"]["full"]:
            recorded[row["sha256"]] = row
    if RESULTS.exists():
        for row in json.loads(RESULTS.read_text())["stages"]:
            recorded[row["sha256"]] = row
    data = {"generated": f"by {TOOL} --engine-compare; do not edit: rerun the tool",
            "machine": machine_info(), "steps": steps}
    for key, rev in (("before", BEFORE_REV), ("after", AFTER_REV)):
        with scripts_at(rev) as (root, commit):
            bench = []
            full = []
            for stage in stage_list:
                print(f"{key} ({rev}): {stages.STAGE_FILES[stage]}, {steps} steps ...", flush=True)
                bench.append(bench_stage(stage, steps, root))
                script_sha = sha256(stages.stage_path(stage, root))
                if script_sha in recorded:
                    full.append(recorded[script_sha])
                else:
                    print("  full default run ...", flush=True)
                    row = full_run(stage, root)
                    print(f"  {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU", flush=True)
                    full.append(row)
            print_rows(bench, f"{key}: {rev} ({commit[:7]})")
        data[key] = {"rev": rev, "commit": commit, "bench": bench, "full": full}
    write_json(ENGINE, data)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.error = lambda message: fail(f"{message} (see --help)")
    parser.add_argument("--stages", type=int, nargs="+", choices=range(6), metavar="N",
                        help="stages to measure, 0-5 (default: all; 2-5 for --engine-compare)")
    parser.add_argument("--steps", type=int,
                        help="steps per stage (default: 20; 200 for --paired)")
    parser.add_argument("--args", default="",
                        help='extra settings for the scripts, e.g. --args="--n_embd=8"')
    parser.add_argument("--rev", help="measure the scripts as committed at this git revision")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--profile", type=int, choices=range(6), metavar="STAGE",
                      help="print a cProfile (top 15 by own time) of --steps steps of STAGE")
    mode.add_argument("--full", action="store_true",
                      help="run each script at its defaults; write benchmarks/results.json")
    mode.add_argument("--engine-compare", action="store_true",
                      help=f"before ({BEFORE_REV}) vs after ({AFTER_REV}); write "
                           f"{ENGINE.relative_to(stages.ROOT)}")
    mode.add_argument("--seeds", type=int, nargs="+", metavar="S",
                      help="run each script at its defaults with --seed S for each S; write "
                           f"{SEEDS.relative_to(stages.ROOT)}")
    mode.add_argument("--paired", action="store_true",
                      help=f"training loop before issue 9 ({LEAN_REV}) vs now, stages 2-5, "
                           f"interleaved; write {PAIRED.relative_to(stages.ROOT)}")
    mode.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions of each run for --paired (default: 3)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="runs at a time for --seeds (default: the number of CPUs)")
    opts = parser.parse_args()
    if opts.worker:
        spec = json.loads(opts.worker)
        worker = run_training if spec.get("mode") == "training" else run_worker
        print(json.dumps(worker(spec)))
        return
    if opts.steps is None:
        opts.steps = 200 if opts.paired else 20
    if opts.steps < 1:
        fail(f"--steps must be at least 1, got {opts.steps}")
    try:
        extra = shlex.split(opts.args)
    except ValueError as e:
        fail(f"--args: {e}")
    if opts.full:
        if opts.rev or extra:
            fail("--full runs the working tree's scripts at their defaults: no --rev or --args")
        do_full(opts.stages or range(6))
    elif opts.seeds:
        if opts.rev or extra:
            fail("--seeds runs the working tree's scripts at their defaults: no --rev or --args")
        if opts.jobs < 1:
            fail(f"--jobs must be at least 1, got {opts.jobs}")
        if len(set(opts.seeds)) != len(opts.seeds):
            fail("--seeds: each seed once")
        do_seeds(opts.seeds, opts.stages or range(6), opts.jobs)
    elif opts.paired:
        if opts.rev or extra:
            fail(f"--paired compares {LEAN_REV} with the working tree: no --rev or --args")
        if opts.reps < 1:
            fail(f"--reps must be at least 1, got {opts.reps}")
        do_paired(opts.steps, opts.reps, opts.stages or GRAPH_STAGES)
    elif opts.engine_compare:
        if opts.rev or extra:
            fail(f"--engine-compare compares {BEFORE_REV} with {AFTER_REV}: no --rev or --args")
        do_engine_compare(opts.steps, opts.stages or GRAPH_STAGES)
    elif opts.profile is not None:
        with scripts_at(opts.rev) as (root, _):
            result = bench_stage(opts.profile, opts.steps, root, extra, profile=True)
        command = " ".join(["python", TOOL, *sys.argv[1:]])
        print(f"cProfile of {result['file']}, {opts.steps} steps, by `{command}`")
        print(f"on {machine_line(machine_info())}; times include the profiler's overhead")
        print_rows([result], "")
        print(result["profile"].strip("\n"))
    else:
        rows = []
        with scripts_at(opts.rev) as (root, commit):
            for stage in opts.stages or range(6):
                rows.append(bench_stage(stage, opts.steps, root, extra))
        label = f"{opts.steps} steps per stage" + (f", at {opts.rev}" if opts.rev else "")
        print_rows(rows, label)


if __name__ == "__main__":
    main()
