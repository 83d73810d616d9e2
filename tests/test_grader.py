"""Tests for tools/grade.py: the reference solutions score full marks on every exercise, the
untouched handouts score 0, every plausible wrong answer in tools/exercises.toml (cut
gradient graphs included) loses points on its own exercise only, and the grader survives an
endless loop, a raise at import, a syntax error and an unreadable file, writing CSV and a
summary; deleted check cells change nothing. Correct answers written another way (inline
collaborators, IPython magics, a VS Code export, another sampler) keep full marks; a helper from
another cell gets a reason that says what the grader runs. Attacks: tests/test_grader_attacks.py
and tests/test_grader_hostile.py.

Run: python -m pytest -q tests/test_grader.py
"""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_sandbox
from exercise_checks.compare import mismatch
from submissions import RIGHT, TOGETHER, WRONG, make_submission

TOOLS = Path(__file__).resolve().parent.parent / "tools"
import exercises  # noqa: E402
import grade  # noqa: E402
import stages  # noqa: E402

STAGES = range(len(stages.STAGE_FILES))
IDS = {stage: [ex.id for ex in exercises.stage_exercises(stage)] for stage in STAGES}


def grade_files(tmp_path, stage, files, timeout=5):
    """Grade {name: text} as one class folder; {student: {exercise: (points, reason)}}."""
    require_sandbox()
    folder = tmp_path / f"class{stage}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    rows, _ = grade.grade_folder(stage, folder, tmp_path / f"out{stage}", timeout=timeout,
                                 quiet=True)
    return {path.stem: res for path, res in rows}


@pytest.fixture(scope="module")
def reference_and_untouched(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grade")
    return {stage: grade_files(tmp, stage, {
        "reference.ipynb": make_submission(stage, "correct"),
        "untouched.ipynb": make_submission(stage, "untouched"),
        "reference_export.py": make_submission(stage, "py")}) for stage in STAGES}


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_reference_solutions_score_full_marks(reference_and_untouched, stage):
    for student in ["reference", "reference_export"]:
        res = reference_and_untouched[stage][student]
        for ex_id in IDS[stage]:
            assert res[ex_id] == (10.0, "all checks passed"), (student, ex_id)


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_untouched_handouts_score_zero(reference_and_untouched, stage):
    res = reference_and_untouched[stage]["untouched"]
    for ex_id in IDS[stage]:
        assert res[ex_id][0] == 0.0
        assert "not implemented" in res[ex_id][1]


@pytest.mark.slow
@pytest.mark.parametrize("stage", STAGES)
def test_every_plausible_wrong_answer_is_caught_on_its_own_exercise(tmp_path, stage):
    files = {}
    for ex_id in IDS[stage]:
        count = 1 if ex_id in TOGETHER else len(WRONG[ex_id])
        for variant in range(count):
            files[f"wrong_{ex_id}_{variant}.ipynb"] = make_submission(
                stage, "wrong", ex_id, variant)
    results = grade_files(tmp_path, stage, files)
    for name, res in results.items():
        _, ex_id, _ = name.split("_")
        assert res[ex_id][0] < 10.0, (name, res[ex_id])
        for other in IDS[stage]:
            if other != ex_id:
                assert res[other][0] == 10.0, (name, other, res[other])


@pytest.mark.slow
def test_grader_survives_broken_submissions(tmp_path):
    files = {kind + ".ipynb": make_submission(3, kind, "3.2")
             for kind in ["loop", "raise", "syntax", "no_checks"]}
    files["not_a_notebook.ipynb"] = "{ this is not json"
    files["empty.py"] = "print('hello')\n"
    results = grade_files(tmp_path, 3, files, timeout=2)
    assert results["loop"]["3.2"] == (0.0, "timed out after 2 s (an endless loop?)")
    assert results["raise"]["3.2"][0] == 0.0
    assert ("your cell raised RuntimeError at line 1: broken at import"
            in results["raise"]["3.2"][1])
    assert results["syntax"]["3.2"][0] == 0.0
    assert results["syntax"]["3.2"][1].startswith("syntax error in your cell, line 1")
    for kind in ["loop", "raise", "syntax"]:   # the other exercises are graded as usual
        assert results[kind]["3.1"][0] == 10.0 and results[kind]["3.3"][0] == 10.0
    assert all(results["no_checks"][ex_id][0] == 10.0 for ex_id in IDS[3])
    for ex_id in IDS[3]:
        assert results["not_a_notebook"][ex_id][0] == 0.0
        assert results["not_a_notebook"][ex_id][1].startswith("cannot read the submission")
        assert results["empty"][ex_id][1].startswith("missing: no code cell defines")


def test_the_answer_reader_does_read_the_answers_when_not_sandboxed():
    text = make_submission(3, "reads_answers", "3.3")
    spy = next(c for c in __import__("json").loads(text)["cells"]
               if "_peek" in c["source"])["source"]
    ns = {}
    exec(spy, ns)
    with pytest.raises(RuntimeError, match="read the answers"):
        ns["_peek"]()


def test_a_submission_cannot_read_the_probes_or_the_reference(tmp_path):
    results = grade_files(tmp_path, 3, {
        "spy.ipynb": make_submission(3, "reads_answers", "3.3"),
        "hidden_answers_of_alice.ipynb": make_submission(3, "correct")})
    assert results["spy"]["3.3"] == (10.0, "all checks passed")   # _peek found nothing


def test_reports_hold_points_reasons_and_a_summary(tmp_path):
    grade_files(tmp_path, 5, {"ann.ipynb": make_submission(5, "correct"),
                              "bob.ipynb": make_submission(5, "wrong", "5.1")})
    with open(tmp_path / "out5" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["5.1"], r["5.2"], r["total"]) for r in rows] == [
        ("ann", "10.0", "10.0", "20.0"), ("bob", "0.0", "10.0", "10.0")]
    with open(tmp_path / "out5" / "feedback.csv") as f:
        feedback = list(csv.DictReader(f))
    bob = next(r for r in feedback if r["student"] == "bob" and r["exercise"] == "5.1")
    assert bob["result"].startswith("adam_update: one step: [0][0][0]: yours 0.818108, expected")
    summary = (tmp_path / "out5" / "summary.txt").read_text()
    assert "2 submissions graded" in summary
    assert "5.1" in summary and "1 / 2" in summary


@pytest.mark.parametrize("args, message", [
    (["9", "."], "error: no stage 9; stages are 0-5"),
    (["2", "/no/such/folder"], "error: not a folder: /no/such/folder"),
    (["2"], "error: give a STAGE and a FOLDER"),
])
def test_bad_input_is_a_one_line_error(args, message):
    proc = subprocess.run([sys.executable, str(TOOLS / "grade.py"), *args],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith(message)
    assert "Traceback" not in proc.stderr


def test_points_never_exceed_the_exercise_s_points():
    ex = exercises.BY_ID["3.2"]
    reference = {"cell": None, "cases": {"a": {"value": [1.0, 2.0], "tolerance": 1e-9},
                                         "b": {"value": 3.0, "tolerance": 1e-9}}}
    answer = {"cell": None, "cases": {**reference["cases"],
                                      **{f"extra {k}": {"value": 1.0} for k in range(50)}}}
    assert grade.score(ex, reference, answer) == (10.0, "all checks passed")
    answer["cases"]["b"] = {"value": 3.5}
    assert grade.score(ex, reference, answer) == (5.0, "b: yours 3.5, expected 3")


def exercise_cell(nb, ex_id):
    return next(c for c in nb["cells"] if ex_id in c["metadata"]["microgpt"].get("exercises", []))


@pytest.mark.slow
def test_correct_answers_written_another_way_keep_full_marks(tmp_path):
    """Sampling from cumulative probabilities, rmsnorm written inside the block, attention
    written inside multi_head_attention: the probes use the real collaborators."""
    for ex_id in RIGHT:
        stage = exercises.BY_ID[ex_id].stage
        results = grade_files(tmp_path, stage, {f"right_{ex_id}.ipynb": make_submission(
            stage, "right", ex_id)})
        assert results[f"right_{ex_id}"][ex_id] == (10.0, "all checks passed"), ex_id


def test_magics_cell_markers_and_missing_helpers(tmp_path):
    nb = json.loads(make_submission(3, "correct"))
    exercise_cell(nb, "3.1")["source"] = "%load_ext autoreload\n%autoreload 2\n" + \
        exercise_cell(nb, "3.1")["source"]
    exercise_cell(nb, "3.2")["source"] = "%%time\n" + exercise_cell(nb, "3.2")["source"]
    magics = exercises.dumps(nb)
    # a VS Code / Spyder export: every cell after a bare #%% (or # %% title), none tagged, and
    # the notebook-only cells (which import matplotlib, absent from the sandbox) kept
    nb = json.loads(make_submission(3, "correct"))
    vscode = "".join(("#%%\n" if k % 2 else "# %% cell\n") + c["source"] + "\n"
                     for k, c in enumerate(nb["cells"]) if c["cell_type"] == "code")
    assert "import matplotlib" in vscode
    # what jupyter nbconvert --to script writes: # In[n]: markers, magics as get_ipython() calls
    # (a cell magic holds its whole cell as a string), and a jupytext-tagged cell with a magic
    cells = []
    for k, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        src = cell["source"]
        if "3.2" in cell["metadata"]["microgpt"].get("exercises", []):
            src = f"get_ipython().run_cell_magic('time', '', {src!r})"
        if "3.3" in cell["metadata"]["microgpt"].get("exercises", []):
            cells.append("# %% exercise 3.3\nget_ipython().run_line_magic('time', '')\n" + src)
            continue
        cells.append(f"# In[{k}]:\n\n\nget_ipython().system('pip install x')\n{src}\n")
    nbconvert = "\n\n".join(cells)
    nb = json.loads(make_submission(3, "correct"))
    cell = exercise_cell(nb, "3.2")
    cell["source"] = cell["source"].replace("/ head_dim ** 0.5", "/ root_of(head_dim)")
    nb["cells"].insert(nb["cells"].index(cell), {   # a helper in a cell of its own
        "cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
        "source": "from math import sqrt as root_of\n"})
    helper = exercises.dumps(nb)
    results = grade_files(tmp_path, 3, {"magics.ipynb": magics, "vscode.py": vscode,
                                        "nbconvert.py": nbconvert, "helper.ipynb": helper,
                                        "bom_nb.ipynb": "\ufeff" + magics,   # a byte-order mark
                                        "bom_py.py": "\ufeff" + vscode})
    for student in ["magics", "vscode", "nbconvert", "bom_nb", "bom_py"]:
        assert results[student] == {ex_id: (10.0, "all checks passed") for ex_id in IDS[3]}
    points, reason = results["helper"]["3.2"]
    assert points == 0.0
    assert reason.endswith("name 'root_of' is not defined; the grader runs only this exercise's "
                           "cell, after the handout's own code: put the helpers and imports it "
                           "needs in this cell")


def test_every_probe_case_has_a_label_of_its_own():
    probes = {}
    exec(grade.PROBES, probes)
    for name, probe in probes.items():
        if name.startswith("probe_"):
            labels = [label for label, _, _ in probe({})]
            assert len(labels) == len(set(labels)) >= 2, name


def test_feedback_shows_enough_digits_to_see_the_difference():
    assert mismatch(0.83973111, 0.83973102, 1e-9) == "yours 0.8397311, expected 0.839731"
    assert mismatch([1.0, 2.000000001], [1.0, 2.0], 1e-12) == \
        "[1]: yours 2.000000001, expected 2"
