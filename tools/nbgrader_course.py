"""Write the exercises as an nbgrader course directory (nbgrader 0.9), one assignment per stage.

  python tools/nbgrader_course.py DIR

Writes: DIR/nbgrader_config.py (tools/templates/nbgrader_config.py) and, per stage,
DIR/source/exercisesN_<name>/exercisesN_<name>.ipynb (the handout with its solutions between
nbgrader's solution markers) and .../data/names.txt (the data, where the notebook looks for it).
Reads: the handouts as tools/exercises.py builds them; notebooks/exercises/checks/ (helpers.py
and visible.py: the visible checks); tools/exercise_checks/ (probes.py and compare.py: the hidden
ones); and the reference answers to the probes, computed as tools/grade.py computes them (its
runner, on the reference solution).

In each notebook the exercise cells are nbgrader solution cells; each exercise has a visible
check cell and a hidden check cell (between the hidden-test markers), autograded test cells
worth half the exercise's points each; every other code cell is locked, so autograde puts back
the instructor's version of any cell a student edits (and, by the config, any check cell a
student deletes). A check cell defines every helper it uses itself, so a student who redefines
a helper (`expect_close`, `run_check`) in a cell of their own changes nothing. The hidden check is
the grader's: the exercise's probe, run on the student's functions with the stage's other
exercises' reference solutions in place meanwhile (as in the grader's context), compared case by
case with the reference answers by compare.py. Under nbgrader (NBGRADER_EXECUTION is set) the
notebook trains a tiny model for one step: grading needs only the exercises. nbgrader runs the
checks in the student's kernel, so a determined student can still fake a pass from inside it;
tools/grade.py is the grader that does not trust student code.
"""
import argparse
import ast
import copy
import shutil
from pathlib import Path

import exercises
import grade
import stages

CHECK_FILES = [exercises.VISIBLE_DIR / "helpers.py", exercises.VISIBLE_DIR / "visible.py",
               exercises.CHECKS_DIR / "compare.py", exercises.CHECKS_DIR / "probes.py"]


def assignment_name(stage):
    return exercises.handout_name(stage)[:-len(".ipynb")]


def definitions():
    """(imports, {name: source}) of the top-level statements of the check files, in order."""
    imports, defs = [], {}
    for path in CHECK_FILES:
        text = path.read_text(encoding="utf-8")
        lines = stages.split_lines(text)
        for node in ast.parse(text).body:
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            source = "".join(lines[first - 1:node.end_lineno])
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                imports += [source] if source not in imports else []
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defs[node.name] = source
    return imports, defs


def standalone_check(function, source=None):
    """Source that defines `function` (from the check files, or `source`) and every helper it
    uses, then runs it with run_check(..., strict=True): a failed check raises, so the cell
    scores 0."""
    imports, defs = definitions()
    if source is not None:
        defs[function] = source
    needed = {function, "run_check"}
    todo = list(needed)
    while todo:
        for node in ast.walk(ast.parse(defs[todo.pop()])):
            if isinstance(node, ast.Name) and node.id in defs and node.id not in needed:
                needed.add(node.id)
                todo.append(node.id)
    body = "\n\n".join(source for name, source in defs.items() if name in needed)
    return "".join(imports) + "\n\n" + body + f"\n\nrun_check({function}, strict=True)\n"


def reference_answers(stage, root=exercises.ROOT):
    """{exercise id: {case label: answer}}: the reference solution's answers to the probes,
    from grade.py's runner (not sandboxed: it runs only the course's own code)."""
    contexts = {ex.id: exercises.grader_context(stage, ex.id, root)
                for ex in exercises.stage_exercises(stage)}
    settings = {"timeout": 60, "memory_mb": 2048, "isolated": False}
    answers = grade.reference_answers(stage, contexts, grade.load_probes(), settings)
    return {ex_id: {label: case["value"] for label, case in answer["cases"].items()}
            for ex_id, answer in answers.items()}


def hidden_source(ex, reference, solved_nb):
    """hidden_<name>(ns): the probe of exercise ex against `reference` (its answers), with the
    solutions of the other exercise cells of the solved handout `solved_nb` in place."""
    others = "\n\n".join(cell["source"] for cell in solved_nb["cells"]
                         if ex.id not in cell["metadata"]["microgpt"].get("exercises", [ex.id]))
    names = [node.name for node in ast.parse(others).body
             if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    return (f"def hidden_{ex.name}(ns):\n"
            f'    """The grader\'s probe of exercise {ex.id}, and its reference answers."""\n'
            f"    probe_check(ns, probe_{ex.name}, {reference!r},\n"
            f"                {others!r},\n                {names!r})\n")


def nbgrader_meta(grade_id, grade=False, solution=False, locked=False, points=None):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def check_cells(ex, reference, solved_nb):
    """The visible and the hidden check cell of an exercise, half its points each."""
    key = ex.id.replace(".", "_")
    visible = exercises.code(f"# check for exercise {ex.id}: run this cell after writing your "
                             "code (it defines\n# its own helpers, so that no other cell can "
                             "change what it checks)\n" + standalone_check(f"check_{ex.name}"),
                             {"source": "check", "exercise": ex.id})
    visible["metadata"]["nbgrader"] = nbgrader_meta(f"check{key}", grade=True, locked=True,
                                                    points=ex.points // 2)
    hidden = exercises.code(
        f"# hidden check for exercise {ex.id}: only the autograder runs it\n"
        "### BEGIN HIDDEN TESTS\n" + standalone_check(
            f"hidden_{ex.name}", hidden_source(ex, reference, solved_nb))
        + "### END HIDDEN TESTS\n", {"source": "hidden", "exercise": ex.id})
    hidden["metadata"]["nbgrader"] = nbgrader_meta(f"hidden{key}", grade=True, locked=True,
                                                   points=ex.points - ex.points // 2)
    return [visible, hidden]


def autograde_cell(stage):
    settings = "".join("    " + line for line in stages.split_lines(exercises.TINY[stage]))
    return exercises.code("# nbgrader: when nbgrader runs this notebook (to autograde or validate "
                          "it), train a\n# tiny model for one step: grading needs only the "
                          "exercise cells\nif os.environ.get('NBGRADER_EXECUTION'):\n"
                          + settings, {"source": "notebook-only"})


def course_notebook(stage, root=exercises.ROOT, references=None):
    """The nbgrader source notebook of a stage (a dict)."""
    references = references or reference_answers(stage, root)
    nb = exercises.build_handout(stage, "nbgrader", root)
    solved = exercises.build_handout(stage, "solution", root)
    solved["cells"] = [c for c in solved["cells"]
                       if c["metadata"]["microgpt"].get("source") == "exercise"]
    helpers = exercises.helpers_source()
    cells = []
    for cell in nb["cells"]:
        meta = cell["metadata"]["microgpt"]
        if meta.get("source") == "check":
            ex = exercises.BY_ID[meta["exercise"]]
            cells += check_cells(ex, references[ex.id], solved)
            continue
        if cell["cell_type"] == "code" and cell["source"] == helpers:
            continue   # each check cell defines its own helpers
        if meta.get("source") == "script" and meta.get("section") == "data" and not any(
                c["metadata"]["microgpt"].get("section") == "data" for c in cells):
            cells.append(autograde_cell(stage))
        cells.append(copy.deepcopy(cell))
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
        if cell["cell_type"] != "code":
            continue
        if cell["metadata"]["microgpt"].get("source") == "exercise":
            ids = cell["metadata"]["microgpt"]["exercises"]
            cell["metadata"]["nbgrader"] = nbgrader_meta("ex" + ids[0].replace(".", "_"),
                                                         solution=True)
        elif "nbgrader" not in cell["metadata"]:
            cell["metadata"]["nbgrader"] = nbgrader_meta(f"locked-{k:03d}", locked=True)
    nb["cells"] = cells
    return nb


def write_course(out_dir, root=exercises.ROOT):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(exercises.TOOLS_DIR / "templates" / "nbgrader_config.py",
                out_dir / "nbgrader_config.py")
    for stage in range(len(stages.STAGE_FILES)):
        folder = out_dir / "source" / assignment_name(stage)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(root) / "data" / "names.txt", folder / "data" / "names.txt")
        (folder / exercises.handout_name(stage)).write_text(
            exercises.dumps(course_notebook(stage, root)), encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="the course directory to write")
    write_course(parser.parse_args(argv).dir)
    return 0


if __name__ == "__main__":
    stages.run(main)
