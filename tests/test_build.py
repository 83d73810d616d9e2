"""tools/build.py: the one command that rebuilds or checks every generated file."""
import subprocess
import sys

import pytest

from conftest import ROOT
import build  # noqa: E402  (conftest puts tools/ on sys.path)


def test_check_passes_on_the_committed_tree():
    done = subprocess.run([sys.executable, "tools/build.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "everything generated is up to date" in done.stdout


def test_check_runs_every_generator_check_in_dependency_order():
    tools = [tool for tool, _ in build.commands("check")]
    assert tools.index("experiments.py") < tools.index("make_notebooks.py")
    assert tools.index("make_notebooks.py") < tools.index("exercises.py")
    assert tools.index("make_notebooks.py") < tools.index("readme_figures.py")
    assert all(argv[-1] == "--check" for _, argv in build.commands("check"))
    assert [t for t, _ in build.commands("build")] == [t for t in tools if t != "repo.py"]


def test_a_failing_step_stops_the_build_with_its_name(monkeypatch):
    monkeypatch.setattr(build, "STEPS", [("repo.py", None, ["--no-such-option"]),
                                         ("make_diffs.py", [], ["--check"])])
    monkeypatch.setattr(sys, "argv", ["build.py", "--check"])
    with pytest.raises(SystemExit) as stop:
        build.main()
    assert str(stop.value).startswith("error: tools/repo.py --no-such-option failed")
