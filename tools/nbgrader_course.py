"""Write the exercises as an nbgrader course directory (nbgrader 0.9), one assignment per stage.

  python tools/nbgrader_course.py DIR

Writes: DIR/nbgrader_config.py (a part of notebooks/exercises/checks/cells.py) and, per stage,
DIR/source/exercisesN_<name>/ with the handout (its solutions between nbgrader's markers) and
data/names.txt. Reads: the handouts as tools/exercises.py builds them, the visible checks
and the grader's probes (notebooks/exercises/checks/), compare.py (tools/exercise_checks/), the
cells of notebooks/exercises/checks/cells.py, and the reference's answers to the probes (by
tools/grade.py's runner). Exercise cells are solution cells; each exercise has a visible and a
hidden check cell (the grader's probe), half its points each; every other code cell is locked.
"""
import argparse
import ast
import shutil
import textwrap
from pathlib import Path

import exercises
import grade
import stages

CHECK_FILES = [exercises.CHECKS_DIR / "helpers.py", exercises.CHECKS_DIR / "visible.py",
               grade.SANDBOX_DIR / "compare.py", exercises.CHECKS_DIR / "probes.py"]


def assignment_name(stage):
    return exercises.handout_name(stage)[:-len(".ipynb")]


def standalone_check(function, source=None):
    """Code that defines `function` (from the check files, or `source`) and every helper it
    uses, then runs it with run_check(..., strict=True): a failed check raises, scoring 0."""
    imports, defs = [], {}
    for path in CHECK_FILES:
        for node, text in exercises.top_level(path):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and text not in imports:
                imports.append(text)
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defs[node.name] = text
    defs[function] = source or defs[function]
    needed = [function, "run_check"]
    for name in needed:   # the list grows while it is walked
        for node in ast.walk(ast.parse(defs[name])):
            if isinstance(node, ast.Name) and node.id in defs and node.id not in needed:
                needed.append(node.id)
    body = "\n\n".join(text for name, text in defs.items() if name in needed)
    return "".join(imports) + "\n\n" + body + f"\n\nrun_check({function}, strict=True)"


def nbgrader_meta(grade_id, solution=False, locked=True, points=None):
    meta = {"grade": points is not None, "grade_id": grade_id, "locked": locked,
            "schema_version": 3, "solution": solution, "task": False}
    return meta if points is None else {**meta, "points": points}


def check_cells(ex, reference, solved_nb):
    """Exercise ex's visible and hidden check, half its points each; the hidden one runs the
    grader's probe against `reference` (its answers), the other exercise cells solved."""
    others = "\n\n".join(cell["source"] for cell in solved_nb["cells"]
                         if ex.id not in cell["metadata"]["microgpt"].get("exercises", [ex.id]))
    names = [node.name for node in ast.parse(others).body
             if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    hidden = (f"def hidden_{ex.name}(ns):\n"
              f'    """The grader\'s probe of exercise {ex.id}, and its reference answers."""\n'
              f"    probe_check(ns, probe_{ex.name}, {reference!r},\n"
              f"                {others!r},\n                {names!r})\n")
    key = ex.id.replace(".", "_")
    cells = []
    for kind, part, source, points in [("check", "visible", None, ex.points // 2),
                                       ("hidden", "hidden", hidden, ex.points - ex.points // 2)]:
        check = standalone_check(f"{kind}_{ex.name}", source)
        cells.append(exercises.code(stages.template(exercises.CELLS, part, id=ex.id, check=check)
                                    + "\n", {"source": kind, "exercise": ex.id}))
        cells[-1]["metadata"]["nbgrader"] = nbgrader_meta(kind + key, points=points)
    return cells


def course_notebook(stage):
    nb = exercises.build_handout(stage, "nbgrader")
    solved = exercises.build_handout(stage, "solution")
    # the reference's answers, by grade.py's runner (not sandboxed: only the course's own code)
    settings = {"timeout": 60, "memory_mb": 2048, "isolated": False}
    references = grade.reference_answers(stage, grade.jobs(stage), settings)
    cells, helpers = [], exercises.helpers_source()
    for cell in nb["cells"]:
        meta = cell["metadata"]["microgpt"]
        if meta.get("source") == "check":
            ex = exercises.BY_ID[meta["exercise"]]
            cells += check_cells(ex, references[ex.id]["cases"], solved)
        elif cell["source"] != helpers:   # each check cell defines the helpers it uses
            cells.append(cell)
    data = next(k for k, cell in enumerate(cells)   # when nbgrader runs it, a tiny model
                if cell["metadata"]["microgpt"].get("section") == "data")
    tiny = textwrap.indent(exercises.TINY[stage], "    ").rstrip("\n")
    cells.insert(data, exercises.code(stages.template(exercises.CELLS, "autograde", settings=tiny)
                                      + "\n", {"source": "notebook-only"}))
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
        if cell["metadata"]["microgpt"].get("source") == "exercise":
            grade_id = "ex" + cell["metadata"]["microgpt"]["exercises"][0].replace(".", "_")
            cell["metadata"]["nbgrader"] = nbgrader_meta(grade_id, solution=True, locked=False)
        elif cell["cell_type"] == "code" and "nbgrader" not in cell["metadata"]:
            cell["metadata"]["nbgrader"] = nbgrader_meta(f"locked-{k:03d}")
    nb["cells"] = cells
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir", help="the course directory to write")
    out_dir = Path(parser.parse_args(argv).dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "nbgrader_config.py").write_text(
        stages.template(exercises.CELLS, "nbgrader_config") + "\n", encoding="utf-8")
    for stage in range(len(stages.STAGE_FILES)):
        folder = out_dir / "source" / assignment_name(stage)
        (folder / "data").mkdir(parents=True, exist_ok=True)
        shutil.copy(stages.ROOT / "data" / "names.txt", folder / "data" / "names.txt")
        (folder / exercises.handout_name(stage)).write_text(
            exercises.dumps(course_notebook(stage)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    stages.run(main)
