"""The tools, the tests, the site builder and the handouts' checks (notebooks/exercises/checks)
follow one rule set: ruff with the settings in pyproject.toml (one quote style, lines under 100,
no function over complexity 15), and the tools' size limits of issue 16: at most 4,000 lines of
Python in tools/, no file over 600.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BUDGET, FILE_BUDGET = 4000, 600


def test_ruff_finds_nothing():
    if shutil.which("ruff") is None:
        pytest.fail("ruff is missing: pip install -r requirements-dev.txt")
    done = subprocess.run(["ruff", "check", "--no-cache", "tools", "tests", "web",
                           "notebooks/exercises/checks"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr


def test_ruff_would_catch_a_single_quoted_string(tmp_path):
    """The rule set is live: a file breaking it fails (so the test above can fail)."""
    bad = tmp_path / "bad.py"
    bad.write_text("x = 'single'\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), str(bad)], capture_output=True, text=True)
    assert done.returncode == 1 and "Q000" in done.stdout


def line_counts(paths):
    return {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines())
            for path in paths}


def test_tools_fit_their_budget():
    every_file = line_counts(path for path in (ROOT / "tools").rglob("*") if path.is_file()
                             and "__pycache__" not in path.parts and path.suffix != ".md")
    too_long = {str(path): n for path, n in every_file.items() if n > FILE_BUDGET}
    assert not too_long, f"files over {FILE_BUDGET} lines: {too_long}"
    python = line_counts((ROOT / "tools").rglob("*.py"))
    assert sum(python.values()) <= TOOLS_BUDGET, f"tools/ has {sum(python.values())} lines"
