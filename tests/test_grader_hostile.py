"""Red-team tests for tools/grade.py, round 2 (issue 15): what one submission can do to the
grader's own process, to the folder as the grader reads it, and to the reports.

- A class of honest students beside hostile submissions of the size limit (a notebook whose
  exercise cells hold megabytes of statements to parse, a .py export of blank lines, one of cell
  markers, a notebook of 200,000 cells) is graded in under 2 minutes with the grader's peak
  memory under 1 GB, exit code 0, every report written and the honest students at full marks;
  as the tests' own user, and (as root) with the whole grader run by uid 65534, the path an
  ordinary user's grading takes.
- Only regular files are graded: links are listed, not followed, and a link or file named like
  the reports' folder never receives them; every file present is graded or listed with the
  reason; one row per student.
- Names and feedback reach the reports safely: no spreadsheet formula, no control character, no
  crash on a lone surrogate or a name that is not UTF-8.

Run: python -m pytest -q tests/test_grader_hostile.py
"""
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import require_sandbox
from submissions import make_submission
from test_grader_attacks import nobody_python

TOOLS = Path(__file__).resolve().parent.parent / "tools"
import exercises  # noqa: E402
import grade  # noqa: E402
import stages  # noqa: E402

HONEST = ["alice", "bob", "carol", "dave", "erin"]
MEASURE = """
import sys, time
sys.path.insert(0, {tools!r})
import grade
start = time.perf_counter()
code = grade.main(['3', {folder!r}])
peak_kb = next(int(line.split()[1]) for line in open('/proc/self/status')
               if line.startswith('VmHWM'))   # ru_maxrss would carry the test's across exec
print(code, time.perf_counter() - start, peak_kb)
"""


def hostile_files():
    """{name: text}: submissions (up to the size limit) aimed at the grader's process."""
    nb = exercises.build_handout(3, "stub")
    cells = [c for c in nb["cells"] if c["metadata"]["microgpt"].get("source") == "exercise"]
    room = grade.MAX_SUBMISSION - len(exercises.dumps(nb).encode()) - 1000
    for cell in cells:   # each exercise's def, then ~7 MB of statements: ~7 GB to parse
        cell["source"] += "a = 1\n" * (room // (7 * len(cells)))
    cell = {"cell_type": "code", "metadata": {}, "outputs": [], "source": "def rmsnorm(x): 0\n"}
    return {"parse_bomb.ipynb": exercises.dumps(nb),
            "many_cells.ipynb": json.dumps({"cells": [cell] * 200000}),   # 200,000 to parse
            "blank_lines.py": "\n" * (grade.MAX_SUBMISSION - 1),   # quadratic to read before
            "cell_markers.py": "# %% exercise 3.1\n" * (grade.MAX_SUBMISSION // 18)}


@pytest.fixture
def public_folder():
    """A fresh folder that uid 65534 can read and write (pytest's tmp_path is root's own),
    removed afterwards (it holds 60 MB)."""
    folder = Path(tempfile.mkdtemp(prefix="grade-hostile-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("user", ["own_user", "unprivileged_user"])
def test_hostile_submissions_of_the_size_limit_cost_the_class_nothing(user, public_folder):
    require_sandbox()
    prefix = []
    python = sys.executable
    if user == "unprivileged_user":
        python = nobody_python()
        if python is None or subprocess.run([python, "-c", "import nbformat"]).returncode:
            pytest.skip("needs root, setpriv and a Python 3.11+ with nbformat that uid 65534 "
                        "can run (not root: the tests' own user is the unprivileged path)")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    folder = public_folder
    for name in HONEST:
        (folder / f"{name}.ipynb").write_text(make_submission(3, "correct"))
    (folder / "frank.py").write_text(make_submission(3, "py"))
    for name, text in hostile_files().items():
        (folder / name).write_text(text)
        assert (folder / name).stat().st_size <= grade.MAX_SUBMISSION
    proc = subprocess.run([*prefix, python, "-c", MEASURE.format(tools=str(TOOLS),
                                                                folder=str(folder))],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    code, seconds, peak_kb = proc.stdout.split()[-3:]
    assert code == "0"
    assert float(seconds) < 120
    assert int(peak_kb) < 1 << 20   # the grader's own peak resident memory, under 1 GB
    with open(folder / "grades" / "grades.csv") as f:
        totals = {row["student"]: float(row["total"]) for row in csv.DictReader(f)}
    assert totals == {**{name: 30.0 for name in HONEST + ["frank"]},
                      "parse_bomb": 0.0, "blank_lines": 0.0, "cell_markers": 0.0,
                      "many_cells": 0.0}
    assert all((folder / "grades" / name).exists() for name in grade.REPORTS)
    feedback = (folder / "grades" / "feedback.csv").read_text()
    assert "cell_markers,3.1,0.0,10,cannot read the submission: ValueError: 10000 cells or more" \
        in feedback
    assert "many_cells,3.1,0.0,10,cannot read the submission: ValueError: more than 10000 cells" \
        in feedback


def grade_quietly(folder, out=None):
    require_sandbox()
    rows, _ = grade.grade_folder(3, folder, out, quiet=True)
    return {path.name: res for path, res in rows}


def test_links_are_listed_not_followed_and_every_file_is_graded_or_listed(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    target = tmp_path / "elsewhere"
    target.mkdir()
    correct = make_submission(3, "correct")
    (folder / "alice.ipynb").write_text(correct)
    (folder / "alice.py").write_text(make_submission(3, "py"))   # the same student
    (folder / "Bob.IPYNB").write_text(correct)
    (folder / "carol.ipynb.txt").write_text(correct)
    (folder / "notes").mkdir()
    (folder / "reference.py").symlink_to(stages.ROOT / stages.STAGE_FILES[3])
    (folder / "copy.ipynb").symlink_to(folder / "alice.ipynb")
    (folder / "grades").symlink_to(target)   # the reports must not go through it
    graded = grade_quietly(folder)
    assert sorted(graded) == ["Bob.IPYNB", "alice.ipynb"]
    assert graded["Bob.IPYNB"]["3.2"] == (10.0, "all checks passed")
    assert list(target.iterdir()) == []
    summary = (folder / "grades-2" / "summary.txt").read_text()
    for line in ["  alice.py: the same student as alice.ipynb, which is graded",
                 "  carol.ipynb.txt: not a .ipynb or .py file",
                 "  copy.ipynb: a symbolic link (links are not followed)",
                 "  grades: a symbolic link (links are not followed)",
                 "  notes: not a regular file",
                 "  reference.py: a symbolic link (links are not followed)"]:
        assert line in summary.splitlines()
    assert "not graded: a symbolic link" in (folder / "grades-2" / "feedback.csv").read_text()


def test_a_file_or_folder_of_the_reports_name_never_receives_or_stops_them(tmp_path):
    folder = tmp_path / "class"
    (folder / "grades").mkdir(parents=True)   # a submitted folder holding a link
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / "grades" / "grades.csv").symlink_to(victim)
    (folder / "grades-2").write_text("a file, as unzip may leave")
    (folder / "alice.ipynb").write_text(make_submission(3, "correct"))
    grade_quietly(folder)
    assert victim.read_text() == "keep me"
    assert "alice" in (folder / "grades-3" / "grades.csv").read_text()
    grade_quietly(folder)   # a second run reuses the folder of its own reports
    assert not (folder / "grades-4").exists()
    out = tmp_path / "out"   # --out: a link already at a report's name is replaced, not followed
    out.mkdir()
    (out / "summary.txt").symlink_to(victim)
    grade_quietly(folder, out)
    assert victim.read_text() == "keep me" and not (out / "summary.txt").is_symlink()


FORGED = """
import json, sys
main = sys.modules['__main__']
main.answer_channel.write(json.dumps({'cell': '=HYPERLINK("http://x", "0 points? click")\\n'
                                      'erin  30\\x1b[2J', 'cases': {}}))
main.answer_channel.flush()
main.os._exit(0)
"""


def test_names_and_feedback_are_written_safely(tmp_path):
    require_sandbox()
    folder = tmp_path / "class"
    folder.mkdir()
    correct = make_submission(3, "correct")
    nb = json.loads(correct)
    cell = next(c for c in nb["cells"] if "3.2" in c["metadata"]["microgpt"].get("exercises", []))
    cell["source"] = FORGED + cell["source"]
    forged = exercises.dumps(nb)
    cell["source"] = "raise RuntimeError(chr(0xdcff))\n" + cell["source"]   # a lone surrogate
    surrogate = exercises.dumps(nb)
    names = {b"jos\xe9.ipynb": correct,   # not UTF-8: what unzip makes of some archives
             b'=HYPERLINK("http:x").ipynb': correct, b"mallory\nerin    30.ipynb": correct,
             b"\x1b[2Jclear.ipynb": correct, b"forger.ipynb": forged,
             b"surrogate.ipynb": surrogate}
    for name, text in names.items():
        with open(os.path.join(os.fsencode(folder), name), "w") as f:
            f.write(text)
    proc = subprocess.run([sys.executable, str(TOOLS / "grade.py"), "3", str(folder)],
                          capture_output=True, text=True, errors="surrogateescape")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    summary = (folder / "grades" / "summary.txt").read_text(encoding="utf-8")
    lines = summary.splitlines()
    table = lines[lines.index(next(x for x in lines if x.startswith("student"))) + 1:]
    assert len(table) == len(names)   # a newline in a name forges no row
    assert "jos\\xe9" in summary and "mallory\\nerin" in summary and "\\x1b[2Jclear" in summary
    for report in ["grades.csv", "feedback.csv"]:
        text = (folder / "grades" / report).read_text(encoding="utf-8")
        for row in csv.reader(io.StringIO(text)):
            for value in row:
                assert value[:1] not in ("=", "+", "-", "@"), value
                assert value.isprintable(), value
    feedback = (folder / "grades" / "feedback.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK(\"\"http://x\"\", \"\"0 points? click\"\")\\nerin  30\\x1b[2J" in feedback
    assert "your cell raised RuntimeError at line 1: \\udcff" in feedback
