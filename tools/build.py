"""Rebuild every generated file of the course in dependency order, or check them all.

It writes nothing itself: it runs each generator of STEPS (data, diffs, the experiments' pages,
notebooks, epilogue, handouts, README tables, links: each reads what the ones before write) and
stops at the first that fails.

    python tools/build.py              rebuild (notebooks keep outputs whose code is unchanged)
    python tools/build.py --execute    also run the stale notebooks, and the epilogue (always)
    python tools/build.py --check      write nothing; exit 1 at the first stale file
Measurements (tools/benchmark.py, tools/experiments.py, tools/epilogue.py --measure) are long
and machine-dependent: they are run on purpose, not by this command. data/names.txt is rebuilt
from the SSA file by tools/build_names.py, and the in-browser site by web/build_site.py.
"""
import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (tool, arguments to rebuild, arguments to check); None: nothing to rebuild, only a check
STEPS = [
    ("build_repeats.py", [], ["--check"]),
    ("make_diffs.py", [], ["--check"]),
    ("experiments.py", ["--render"], ["--check"]),
    ("make_notebooks.py", [], ["--check"]),
    ("epilogue.py", [], ["--check"]),
    ("exercises.py", [], ["--check"]),
    ("readme_figures.py", [], ["--check"]),
    ("repo.py", None, ["--check"]),
]
EXECUTE = {"make_notebooks.py", "epilogue.py"}   # the tools that take --execute


def commands(mode):
    """[(tool, argv)] that `mode` ('build', 'execute' or 'check') runs, in order."""
    out = []
    for tool, build_args, check_args in STEPS:
        if mode == "check":
            args = check_args
        elif build_args is None:
            continue
        else:
            args = build_args + (["--execute"] if mode == "execute" and tool in EXECUTE else [])
        out.append((tool, [sys.executable, str(ROOT / "tools" / tool), *args]))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="write nothing; fail if stale")
    mode.add_argument("--execute", action="store_true", help="also run stale notebooks")
    opts = parser.parse_args()
    chosen = "check" if opts.check else "execute" if opts.execute else "build"
    for tool, argv in commands(chosen):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            sys.exit(f"error: {' '.join(['tools/' + tool, *argv[2:]])} failed: {last}")
        print(f"{' '.join(['tools/' + tool, *argv[2:]])}: ok ({seconds:.0f} s)")
    print("everything generated is up to date" if opts.check else "rebuilt")


if __name__ == "__main__":
    main()
