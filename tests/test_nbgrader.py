"""The nbgrader round trip of the exercises (`python tools/nbgrader_course.py DIR`), run with
nbgrader itself: generate_assignment, autograde and export give every stage's source notebook
(solutions in) full marks and its released notebook (stubs) 0; a student who redefines the check
helpers or edits locked cells still scores 0; hidden checks never reach students.

The course is built once (about 30 s on 2 cores): the six assignments are graded in two course
directories side by side, each with its own gradebook, since nbgrader grades one notebook at a
time. Run: python -m pytest -q tests/test_nbgrader.py
"""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"
import exercises  # noqa: E402
import nbgrader_course  # noqa: E402
import stages  # noqa: E402

STAGES = range(len(stages.STAGE_FILES))
HALVES = [[0, 1, 2], [3, 4, 5]]
CHEAT_STAGE = 2
FAKE_HELPERS = """
def run_check(check, strict=False):
    print('PASS')


def expect(condition, message):
    pass


def expect_close(label, got, want, tol=1e-6, want_text=None):
    pass
"""


def nbgrader(course, *args):
    return subprocess.Popen([sys.executable, "-m", "nbgrader", *args, "--log-level=ERROR"],
                            cwd=course, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "MPLBACKEND": "Agg"})


def wait_all(processes):
    for process in processes:
        out, _ = process.communicate(timeout=300)
        assert process.returncode == 0, out


def read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def text(cell):
    return "".join(cell["source"])


def write(path, nb):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")


def cheat(nb):
    """A released notebook, unsolved, with the check helpers faked in a new cell at the top and
    in the exercise cell, a locked cell and a check cell rewritten, and a hidden check deleted."""
    cells = nb["cells"]
    top = {"cell_type": "code", "metadata": {}, "source": FAKE_HELPERS, "outputs": [],
           "execution_count": None}
    for cell in cells:
        grading = cell["metadata"].get("nbgrader", {})
        if grading.get("solution"):
            cell["source"] += "\n" + FAKE_HELPERS
        elif grading.get("locked") and not grading.get("grade"):
            cell["source"] += "\n" + FAKE_HELPERS
        elif grading.get("grade_id", "").startswith("check"):
            cell["source"] = "pass\n"
    hidden = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade_id", "")
              .startswith("hidden")]
    cells.remove(hidden[0])
    nb["cells"] = [top] + cells
    return nb


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """{(student, stage): score, max score}, after the whole round trip, plus the course dirs."""
    base = tmp_path_factory.mktemp("nbgrader")
    built = base / "built"
    assert nbgrader_course.main([str(built)]) == 0
    dirs = []
    for k, half in enumerate(HALVES):
        course_dir = base / f"course{k}"
        course_dir.mkdir()
        shutil.copy(built / "nbgrader_config.py", course_dir)
        for stage in half:
            name = nbgrader_course.assignment_name(stage)
            shutil.copytree(built / "source" / name, course_dir / "source" / name)
        dirs.append(course_dir)
    wait_all([nbgrader(d, "generate_assignment", "*") for d in dirs])
    for course_dir, half in zip(dirs, HALVES):
        for stage in half:
            name = nbgrader_course.assignment_name(stage)
            notebook = exercises.handout_name(stage)
            for student, folder in [("solved", "source"), ("unsolved", "release")]:
                shutil.copytree(course_dir / folder / name, course_dir / "submitted" / student
                                / name)
            if stage == CHEAT_STAGE:
                shutil.copytree(course_dir / "release" / name,
                                course_dir / "submitted" / "cheater" / name)
                path = course_dir / "submitted" / "cheater" / name / notebook
                write(path, cheat(read(path)))
    wait_all([nbgrader(d, "autograde", "*", "--create") for d in dirs])
    wait_all([nbgrader(d, "export") for d in dirs])
    scores = {}
    for course_dir in dirs:
        with open(course_dir / "grades.csv", newline="") as f:
            for row in csv.DictReader(f):
                stage = int(row["assignment"][len("exercises")])
                scores[row["student_id"], stage] = (float(row["score"]), float(row["max_score"]))
    return scores, dirs


def points(stage):
    return sum(ex.points for ex in exercises.stage_exercises(stage))


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_source_notebook_scores_full_marks_and_released_notebook_zero(course, stage):
    scores, _ = course
    assert scores["solved", stage] == (points(stage), points(stage))
    assert scores["unsolved", stage] == (0, points(stage))


@pytest.mark.slow
def test_faked_helpers_and_edited_locked_cells_do_not_make_an_unsolved_notebook_pass(course):
    scores, _ = course
    assert scores["cheater", CHEAT_STAGE] == (0, points(CHEAT_STAGE))


@pytest.mark.slow
def test_autograde_puts_back_every_locked_cell_and_the_deleted_hidden_check(course):
    _, dirs = course
    course_dir = dirs[[CHEAT_STAGE in half for half in HALVES].index(True)]
    name = nbgrader_course.assignment_name(CHEAT_STAGE)
    notebook = exercises.handout_name(CHEAT_STAGE)
    source = read(course_dir / "source" / name / notebook)["cells"]
    graded = read(course_dir / "autograded" / "cheater" / name / notebook)["cells"]
    by_id = {c["metadata"]["nbgrader"]["grade_id"]: text(c) for c in graded
             if "grade_id" in c["metadata"].get("nbgrader", {})}
    locked = [c for c in source if c["metadata"].get("nbgrader", {}).get("locked")]
    assert len(locked) > 10
    for cell in locked:   # a deleted check comes back after a line saying so
        assert by_id[cell["metadata"]["nbgrader"]["grade_id"]].endswith(text(cell))
    assert any("BEGIN HIDDEN TESTS" in source for source in by_id.values())


@pytest.mark.slow
def test_release_has_stubs_and_no_solutions_or_hidden_checks(course):
    _, dirs = course
    for course_dir, half in zip(dirs, HALVES):
        for stage in half:
            name = nbgrader_course.assignment_name(stage)
            notebook = exercises.handout_name(stage)
            source = json.dumps(read(course_dir / "source" / name / notebook))
            release = json.dumps(read(course_dir / "release" / name / notebook))
            assert (course_dir / "release" / name / "data" / "names.txt").is_file()
            for ex in exercises.stage_exercises(stage):
                assert f"def hidden_{ex.name}(" in source
                assert f"def hidden_{ex.name}(" not in release
                assert f"TODO(exercise {ex.id})" in release
            assert "BEGIN SOLUTION" not in release and "HIDDEN TESTS" not in release
            assert "raise NotImplementedError()" in release


@pytest.mark.parametrize("stage", STAGES)
def test_every_code_cell_is_a_solution_a_test_or_locked(stage):
    nb = nbgrader_course.course_notebook(stage)
    kinds = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            grading = cell["metadata"]["nbgrader"]
            assert grading["solution"] or grading["grade"] or grading["locked"], cell["source"]
            assert grading["locked"] != grading["solution"]
            kinds.append("solution" if grading["solution"] else
                         "test" if grading["grade"] else "locked")
    assert kinds.count("solution") >= 1
    assert kinds.count("test") == 2 * len(exercises.stage_exercises(stage))
    ids = [c["metadata"]["nbgrader"]["grade_id"] for c in nb["cells"] if c["cell_type"] == "code"]
    assert len(ids) == len(set(ids))


def test_check_cells_define_every_helper_they_call():
    source = nbgrader_course.standalone_check("check_local_grads")
    namespace = {}
    exec(source.replace("run_check(check_local_grads, strict=True)", ""), namespace)
    for helper in ["run_check", "expect_close", "is_close", "CheckFailed", "as_float"]:
        assert callable(namespace[helper]), helper
