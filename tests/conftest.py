"""Shared helpers for the stage-script tests: load a stage in-process section by section, run
one as a subprocess, and a small data file so that every run takes a fraction of a second.

load_stage(i, argv, upto) execs stage i's sections before `upto` in a fresh namespace, as if
the script had been run with `argv`, and returns that namespace (its printed output is in
ns['_stdout']). run_section(ns, i, name) then execs one more section into the same namespace.
"""
import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stages

ROOT = Path(__file__).resolve().parent.parent

NUM_STAGES = len(stages.STAGE_FILES)
NAMES_FILE = ROOT / "data" / "names.txt"


def section_text(i, name):
    """The text of section `name` of stage i ('' if the stage has no such section)."""
    return "".join(body for n, body in stages.read_sections(i) if n == name)


def load_stage(i, argv=(), upto="training"):
    """Namespace of stage i after running every section before section `upto` (upto=None:
    the whole script), with settings `argv` (--name=value); ns["_stdout"] holds what it
    printed. The same loader as the tools' (tools/stages.py)."""
    return stages.load_stage(i, argv, upto)


def run_section(ns, i, name):
    """Exec section `name` of stage i into the namespace ns; returns what it printed."""
    text = section_text(i, name)
    if not text:
        raise ValueError(f"stage {i} has no section {name!r}")
    return stages.exec_as_stage(text, i, ns)


def small_args(i, data, n_embd=8):
    """Settings (--name=value) for a small, fast model of stage i that trains on the file
    `data`."""
    args = [f"--data_path={data}"]
    if i >= 1:
        args.append(f"--n_embd={n_embd}")
    if i >= 3:
        args.append("--block_size=8")
    if i >= 4:
        args.append("--n_head=2")
    return args


def run_script(i, args=(), cwd=None, env=None):
    """Run stage i as a subprocess; returns the CompletedProcess (text mode)."""
    cmd = [sys.executable, str(stages.stage_path(i)), *[str(a) for a in args]]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="session")
def names_file(tmp_path_factory):
    """Every 100th name of data/names.txt: 323 names, 32 of them held out for validation."""
    names = NAMES_FILE.read_text(encoding="utf-8").split("\n")
    names = [name for name in names if name][::100]
    path = tmp_path_factory.mktemp("data") / "names_small.txt"
    path.write_text("\n".join(names) + "\n", encoding="utf-8")
    return path



@functools.cache
def _isolation_problem():
    import grade   # tools/grade.py, on sys.path above
    return grade.isolation_problem()


def require_sandbox():
    """Skip a test that grades in the grader's bubblewrap sandbox where none can be made (a
    laptop without bubblewrap), saying why; in CI (CI=true), which installs it (.ci/run), fail."""
    problem = _isolation_problem()
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"no sandbox in CI: {problem}")
    if problem:
        pytest.skip(f"no sandbox here: {problem}")
