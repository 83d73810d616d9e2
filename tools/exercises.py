"""Write the student handouts and load the exercises that tools/grade.py and
tools/nbgrader_course.py grade.

Writes: notebooks/exercises/exercisesN_*.ipynb (one handout per stage) and the exercise table of
notebooks/exercises/README.md (between its generated-block markers).
Reads: tools/exercises.toml (the exercises: regions of the stage scripts found by their text,
instructions, TODOs, plausible answers), the stage scripts, the committed companion notebooks
notebooks/trainN_*.ipynb (written by make_notebooks.py: a handout is its companion with the
regions stubbed), tools/templates/handout_intro.md, and notebooks/exercises/checks/helpers.py and
visible.py, whose text the check cells copy as it is.

In a handout each region becomes a stub (a TODO and `raise NotImplementedError`); the top-level
statement holding it moves to its own exercise cell, with instructions before it and a check cell
after it. Cell metadata: {"microgpt": {"source": "exercise", "exercises": ["2.1", ...]}},
{"microgpt": {"source": "check", "exercise": "2.1"}}. Handouts are written with json.dumps, as
they always were: nbformat's writer would store each source as a list of lines.

  python tools/exercises.py                    write the handouts and the README table
  python tools/exercises.py --check            write nothing; fail if one is stale
  python tools/exercises.py --solutions DIR    write the handouts with the reference solutions
                                               filled in (what tests/test_grader.py grades)
Standard library only. The nbgrader course: python tools/nbgrader_course.py DIR.
"""
import argparse
import ast
import copy
import json
import re
import string
import textwrap
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import stages
from stages import CourseError

ROOT = stages.ROOT
TOOL = "tools/exercises.py"
OUT_DIR = "notebooks/exercises"
TOOLS_DIR = Path(__file__).resolve().parent
CHECKS_DIR = TOOLS_DIR / "exercise_checks"   # the grader's: runner, probes, compare
VISIBLE_DIR = ROOT / OUT_DIR / "checks"   # the handouts': helpers.py, visible.py
GRADER_SECTIONS = ("training", "evaluation", "sampling")   # never run by the grader


@dataclass
class Exercise:
    """One exercise of tools/exercises.toml (whose header says what each field means)."""
    id: str
    stage: int
    name: str
    title: str
    minutes: int
    goal: str
    instructions: str
    targets: list   # SimpleNamespace each; .kind is 'body', 'lines' or 'extract'
    points: int = 10
    defines: list = field(default_factory=list)
    asks: str = ""
    together: bool = False
    wrong: list = field(default_factory=list)   # [{"old", "new", "cut"?}]
    right: list = field(default_factory=list)


def load(path=TOOLS_DIR / "exercises.toml"):
    """(exercises, tiny settings by stage) of the exercises file; CourseError if malformed."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        exs = []
        for raw in data["exercise"]:
            targets = [SimpleNamespace(kind="body" if "body" in t else "lines" if "lines" in t
                                       else "extract", **{"returns": "", "solution": "", **t})
                       for t in raw.pop("target")]
            ex = Exercise(**raw, targets=targets)
            ex.defines = ex.defines or [t.signature.split("(")[0] if t.kind == "extract"
                                        else t.body for t in targets]
            exs.append(ex)
        return exs, {int(k): v for k, v in data["tiny"].items()}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as e:
        raise CourseError(f"{path}: {type(e).__name__}: {e}") from None


EXERCISES, TINY = load()
BY_ID = {ex.id: ex for ex in EXERCISES}
# plausible answers by exercise id, as (old, new) replacements (tests and --demo-class use them)
WRONG = {ex.id: [(w["old"], w["new"]) for w in ex.wrong] for ex in EXERCISES if ex.wrong}
RIGHT = {ex.id: [(w["old"], w["new"]) for w in ex.right] for ex in EXERCISES if ex.right}
CUT = {(ex.id, k) for ex in EXERCISES for k, w in enumerate(ex.wrong) if w.get("cut")}
TOGETHER = {ex.id for ex in EXERCISES if ex.together}


def stage_exercises(stage):
    return [ex for ex in EXERCISES if ex.stage == stage]


def handout_name(stage):
    return "exercises" + stages.STAGE_FILES[stage][len("train"):-len(".py")] + ".ipynb"


def companion_path(stage, root=ROOT):
    return Path(root) / "notebooks" / (stages.STAGE_FILES[stage][:-len(".py")] + ".ipynb")


# --- regions ----------------------------------------------------------------------------------

def find_function(tree, name):
    """The FunctionDef for 'f' or 'Class.method' in a parsed module (None if absent)."""
    found, nodes = None, tree.body
    for part in name.split("."):
        found = next((node for node in nodes if isinstance(node, (ast.FunctionDef, ast.ClassDef))
                      and node.name == part), None)
        if found is None:
            return None
        nodes = found.body
    return found


def body_text(script, name):
    """The lines of function `name` after its docstring (comments included), exactly."""
    func = find_function(ast.parse(script), name)
    if func is None:
        raise CourseError(f"function {name} not found")
    first = func.body[0]
    has_doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
               and isinstance(first.value.value, str))
    start = first.end_lineno if has_doc else first.lineno - 1   # 0-based first line
    return "".join(stages.split_lines(script)[start:func.end_lineno])


def region_text(script, target):
    """The exact text of a target's region in the script; CourseError unless found once."""
    if target.kind == "body":
        text = body_text(script, target.body)
    elif target.kind == "lines":
        text = target.lines
    else:
        start = script.find(target.start + "\n")
        if start < 0 or (start > 0 and script[start - 1] != "\n"):
            raise CourseError(f"line not found: {target.start.strip()!r}")
        end = script.find(target.end + "\n", start)
        if end < 0:
            raise CourseError(f"line not found after the start: {target.end.strip()!r}")
        text = script[start:end + len(target.end) + 1]
        if "\n" in target.end:   # a context line after the region: not part of it
            text = text[:len(text) - len(target.end.split("\n", 1)[1]) - 1]
    count = script.count(text)
    if count != 1:
        raise CourseError(f"region {text.splitlines()[0].strip()!r}... found {count} times")
    return text


def stage_regions(stage, root=ROOT):
    """{(exercise id, target index): region text} of a stage, each found once in its script as
    the earlier extractions left it; CourseError naming the exercise otherwise."""
    script = stages.read_stage(stage, root)
    regions = {}
    for ex in stage_exercises(stage):
        for k, target in enumerate(ex.targets):
            try:
                regions[ex.id, k] = region_text(script, target)
            except CourseError as e:
                raise CourseError(f"exercise {ex.id} ({stages.STAGE_FILES[stage]}): {e}") from None
            if target.kind == "extract":
                script = script.replace(regions[ex.id, k], target.call + "\n")
    return regions


def check_anchors(root=ROOT):
    """{exercise id: [region texts]} over all stages; CourseError if an anchor does not match."""
    found = {}
    for stage in range(len(stages.STAGE_FILES)):
        for (ex_id, _), region in stage_regions(stage, root).items():
            found.setdefault(ex_id, []).append(region)
    return found


# --- what a region becomes ----------------------------------------------------------------------

def stub_lines(ex, todo, indent, todo_only=False):
    pad = " " * indent
    todo_lines = todo.split("\n")
    out = f"{pad}# TODO(exercise {ex.id}): {todo_lines[0]}\n"
    out += "".join(pad + line.strip() + "\n" for line in todo_lines[1:])
    if todo_only:   # nbgrader writes its own stub in place of the solution
        return out
    return out + f"{pad}raise NotImplementedError('exercise {ex.id}: {ex.title}')\n"


def indent_of(text):
    return len(text) - len(text.lstrip(" "))


def extracted_function(ex, target, region, mode):
    """Source of the new function of an extract target: a stub, the solution, or nbgrader's."""
    head = f'def {target.signature}:\n    """{target.doc}"""\n'
    if mode == "stub":
        return head + stub_lines(ex, target.todo, 4)
    if target.solution:
        solution = textwrap.indent(target.solution, "    ")
    else:
        solution = textwrap.indent(textwrap.dedent(region), "    ")
        solution += f"    return {target.returns}\n" if target.returns else ""
    if mode == "nbgrader":
        return (head + stub_lines(ex, target.todo, 4, todo_only=True) + "    ### BEGIN SOLUTION\n"
                + solution + "    ### END SOLUTION\n")
    return head + solution


def replaced_region(ex, target, region, mode):
    """What a body or lines region becomes in the handout (stub), solution or nbgrader copy."""
    indent = indent_of(region.lstrip("\n"))
    if mode == "stub":
        return stub_lines(ex, target.todo, indent)
    if mode == "nbgrader":
        pad = " " * indent
        return (stub_lines(ex, target.todo, indent, todo_only=True)
                + f"{pad}### BEGIN SOLUTION\n{region}{pad}### END SOLUTION\n")
    return region


def extracted_functions(ex, regions, mode):
    return [extracted_function(ex, t, regions[ex.id, k], mode)
            for k, t in enumerate(ex.targets) if t.kind == "extract"]


# --- cells ------------------------------------------------------------------------------------

def md(text, meta):
    return {"cell_type": "markdown", "metadata": {"microgpt": meta}, "source": text}


def code(text, meta):
    return {"cell_type": "code", "metadata": {"microgpt": meta}, "source": text,
            "outputs": [], "execution_count": None}


def source_of(path, function):
    """The exact source lines of top-level function `function` in a file."""
    text = path.read_text(encoding="utf-8")
    node = find_function(ast.parse(text), function)
    if node is None:
        raise CourseError(f"{path.name} has no {function}")
    return "".join(stages.split_lines(text)[node.lineno - 1:node.end_lineno])


def helpers_source():
    """The handout's helper cell: helpers.py (but for its ruff line) plus the functions of
    visible.py that are not checks."""
    text = (VISIBLE_DIR / "helpers.py").read_text(encoding="utf-8").split("\n", 1)[1]
    visible = (VISIBLE_DIR / "visible.py").read_text(encoding="utf-8")
    lines = stages.split_lines(visible)
    for node in ast.parse(visible).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("check_"):
            text += "\n\n" + "".join(lines[node.lineno - 1:node.end_lineno])
    return text


def exercise_cells(exs, source, section):
    """Instructions for each exercise, the one code cell they share, a check cell for each."""
    cells = [md(f"### Exercise {ex.id}: {ex.title} (about {ex.minutes} minutes, {ex.points} "
                f"points)\n\n**Goal:** {ex.goal}.\n\n{ex.instructions}",
                {"source": "instructions", "exercise": ex.id}) for ex in exs]
    cells.append(code(source, {"source": "exercise", "exercises": [ex.id for ex in exs],
                               "section": section}))
    for ex in exs:
        cells.append(code(f"# check for exercise {ex.id}: run this cell after writing your code\n"
                          + source_of(VISIBLE_DIR / "visible.py", f"check_{ex.name}")
                          + f"\n\nrun_check(check_{ex.name})\n",
                          {"source": "check", "exercise": ex.id}))
    return cells


class Edit(NamedTuple):
    ex: Exercise
    k: int   # which target of the exercise
    replacement: str
    inline: bool   # a body or lines region (else the call of an extracted function)


def apply_edits(text, exs, regions, modes):
    """(text with every region it holds replaced, [Edit]), in the exercises' order."""
    edits = []
    for ex in exs:
        for k, target in enumerate(ex.targets):
            region = regions[ex.id, k]
            if region in text:
                inline = target.kind != "extract"
                new = replaced_region(ex, target, region, modes[ex.id]) if inline \
                    else target.call + "\n"
                edits.append(Edit(ex, k, new, inline))
                text = text.replace(region, new)
    return text, edits


def edit_lines(text, edits):
    """[(1-based line of the edit in text, Edit)]. An edit that a later one swallowed (the call
    of an extracted function inside a later region) takes that one's place."""
    placed = []
    for k, edit in enumerate(edits):
        at = next((text.find(e.replacement) for e in edits[k:] if e.replacement in text), -1)
        if at < 0:
            raise CourseError(f"exercise {edit.ex.id}: its edit is lost from the handout's cell")
        placed.append((text[:at].count("\n") + 1, edit))
    return placed


def split_top_level(text, line_numbers):
    """Split a cell's code into chunks so that each top-level statement containing one of the
    (1-based) line numbers is a chunk of its own. Returns [(text, is_marked, first, last)], with
    first..last the chunk's 1-based line numbers in `text`."""
    lines = stages.split_lines(text)
    pieces, pos = [], 0
    for node in ast.parse(text).body:
        if any(node.lineno <= n <= node.end_lineno for n in line_numbers):
            start = node.lineno - 1 - len(getattr(node, "decorator_list", []))
            end = node.end_lineno
            while end < len(lines) and lines[end][:1] == " " and lines[end].strip()[:1] == "#":
                end += 1   # an indented comment after the body belongs to it
            pieces += [(pos, start, False), (start, end, True)]
            pos = end
    pieces.append((pos, len(lines), False))
    return [("".join(lines[a:b]).strip("\n") + "\n", m, a + 1, b)
            for a, b, m in pieces if "".join(lines[a:b]).strip()]


def script_cells(text, section, exs, regions, modes):
    """The handout cells that one script cell of the companion becomes. A top-level statement
    holding a stubbed region is an exercise cell, with the extracted functions of its
    exercises; an exercise that only extracts gets a cell of its own before the statement that
    calls its first extracted function; the rest stays script cells."""
    text, edits = apply_edits(text, exs, regions, modes)
    if not edits:
        return [code(text, {"source": "script", "section": section})]
    placed = edit_lines(text, edits)
    cells = []
    for chunk, is_exercise, first, last in split_top_level(
            text, [line for line, edit in placed if edit.inline]):
        inside = [edit for line, edit in placed if first <= line <= last]
        owners = list({edit.ex.id: edit.ex for edit in inside}.values())
        if is_exercise:
            extra = "".join("\n\n" + f for ex in owners
                            for f in extracted_functions(ex, regions, modes[ex.id]))
            cells += exercise_cells(owners, chunk + extra, section)
            continue
        for edit in inside:
            kinds = [t.kind for t in edit.ex.targets]
            if "body" not in kinds and "lines" not in kinds and edit.k == kinds.index("extract"):
                functions = extracted_functions(edit.ex, regions, modes[edit.ex.id])
                cells += exercise_cells([edit.ex], "\n\n".join(functions), section)
        cells.append(code(chunk, {"source": "script", "section": section}))
    return cells


# --- the handout --------------------------------------------------------------------------------

# A handout never links to what holds its solutions: the companion notebooks, the stage scripts
# and the diffs (such a link becomes its text). The companion's header keeps its title, goal and
# course map; its badge, provenance, diff summary and how-to (the intro cell says how) go.
SOLUTION_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*(?:train\d\w*\.(?:ipynb|py)|diffs/[^)\s]*)\)")
HEADER_DROPPED = ("[![Open In Colab]", "*Generated by", "**What changed", "**How to use it")
# The companion's setup cell also fetches the stage script, which its closing "try it" cell runs:
# a handout's setup fetches only the data, and the try-it part (the notebook's last) is left out.
SETUP = "# notebook-only: setup"
SETUP_COMMENT = ("# notebook-only: setup. Inside a copy of the repository this finds\n"
                 "# data/names.txt; anywhere else (Colab) it downloads that one file.\n"
                 "# The settings find the data through __file__, which is defined here.\n")
NEEDED = "NEEDED = ['data/names.txt']\n"
TRY_IT = "## Try it:"


def load_companion(stage, root=ROOT):
    """The committed companion notebook of a stage, each source one string; CourseError unless
    its script cells are the script (a stale companion: run make_notebooks.py first)."""
    path = companion_path(stage, root)
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    script = "".join(c["source"] for c in nb["cells"]
                     if c["metadata"].get("microgpt", {}).get("source") == "script")
    if script != stages.read_stage(stage, root):
        raise CourseError(f"{path.name} is not {stages.STAGE_FILES[stage]}: run python "
                          "tools/make_notebooks.py first")
    return nb


def handout_setup(text):
    lines = stages.split_lines(text)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    needed = [k for k, line in enumerate(lines) if line.startswith("NEEDED = [")]
    if len(needed) != 1:
        raise CourseError("the companion's setup cell needs one line 'NEEDED = [...]'")
    lines[needed[0]] = NEEDED
    return SETUP_COMMENT + "".join(lines)


def handout_prose(text, header, exs):
    if header:
        text = "\n\n".join(p for p in text.split("\n\n") if not p.startswith(HEADER_DROPPED))
    for ex in exs:
        if ex.asks:
            text = asked(text, ex)
    return SOLUTION_LINK.sub(r"\1", text)


def asked(text, ex):
    """The prose with the column ex.asks of its tables turned into question marks below the first
    row (the worked example), so that the answers of exercise ex are not printed before it."""
    out = []
    column = None
    for line in text.split("\n"):
        cells = line.split("|")
        if line.startswith("|") and ex.asks in [c.strip() for c in cells]:
            column, rows = [c.strip() for c in cells].index(ex.asks), 0
        elif column is not None and line.startswith("|"):
            rows += 1 if set(line) - set("|-: ") else 0   # not the |---| line
            if rows > 1:
                cells[column] = " ? "
                line = "|".join(cells)
        elif column is not None:
            out += ["", f"*The question marks are exercise {ex.id}: work them out there.*"]
            column = None
        out.append(line)
    return "\n".join(out)


def notebook_cells(cell, header, exs):
    """A companion cell that is not the script's, as the handout holds it (the setup cell is
    followed by the check helpers)."""
    new = copy.deepcopy(cell)
    setup = cell["source"].startswith(SETUP)
    if setup:
        new["source"] = handout_setup(cell["source"])
    if new["cell_type"] == "markdown":
        new["source"] = handout_prose(new["source"], header, exs)
    else:
        new["outputs"], new["execution_count"] = [], None
    new.pop("id", None)
    if not new.get("attachments"):
        new.pop("attachments", None)
    return [new, code(helpers_source(), {"source": "notebook-only"})] if setup else [new]


def intro_cell(stage):
    exs = stage_exercises(stage)
    path = f"{OUT_DIR}/{handout_name(stage)}"
    template = (TOOLS_DIR / "templates" / "handout_intro.md").read_text(encoding="utf-8")
    return string.Template(template[:-1]).substitute(
        tool=TOOL, companion=companion_path(stage).name, stage=stage,
        concept=stages.concept(stage), total=sum(ex.minutes for ex in exs),
        badge=f"[![Open In Colab]({stages.COLAB_BADGE})]({stages.colab_url(path)})",
        rows="\n".join(f"| {ex.id} | {ex.title} | {ex.minutes} min | {ex.points} |"
                       for ex in exs))


def build_handout(stage, mode="stub", root=ROOT, solved=()):
    """The handout notebook (a dict) of a stage. mode: 'stub' (students), 'solution'
    (reference filled in) or 'nbgrader' (solutions between BEGIN/END SOLUTION markers); the
    exercises in `solved` get their solution whatever the mode (the grader's context)."""
    nb = load_companion(stage, root)
    exs = stage_exercises(stage)
    modes = {ex.id: "solution" if ex.id in solved else mode for ex in exs}
    regions = stage_regions(stage, root)
    cells = [md(intro_cell(stage), {"source": "exercises"})]
    for cell in nb["cells"]:
        meta = cell["metadata"].get("microgpt", {})
        if cell["cell_type"] == "markdown" and cell["source"].startswith(TRY_IT):
            break
        if meta.get("source") == "script":
            cells += script_cells(cell["source"], meta["section"], exs, regions, modes)
        elif "open(__file__" not in cell["source"]:   # a cell reading the script is left out
            cells += notebook_cells(cell, cell is nb["cells"][0], exs)
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
    metadata = copy.deepcopy(nb["metadata"])
    metadata["microgpt"] = {"generated_by": TOOL, "companion": f"notebooks/"
                            f"{companion_path(stage).name}", "stage": stage,
                            "exercises": [ex.id for ex in exs], "mode": mode}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def dumps(nb):
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def grader_context(stage, ex_id, root=ROOT):
    """[(label, source)]: the handout's code that the grader runs before a student's code for
    exercise ex_id: its script and exercise cells outside the training/evaluation/sampling
    sections (plus the exercise cells there, which only define functions), with tiny settings
    after the command line. Ex_id is a stub; the stage's other exercises are solved, so that a
    probe calls the real collaborators (a student may inline rmsnorm rather than call it). Check
    and notebook-only cells are left out."""
    others = {ex.id for ex in stage_exercises(stage)} - {ex_id}
    parts = []
    for cell in build_handout(stage, "stub", root, solved=others)["cells"]:
        meta = cell["metadata"].get("microgpt", {})
        if cell["cell_type"] != "code" or meta.get("source") not in ("script", "exercise"):
            continue
        if meta.get("source") == "script" and meta.get("section") in GRADER_SECTIONS:
            continue
        parts.append((meta.get("section", ""), cell["source"]))
        if meta.get("section") == "settings" and meta.get("source") == "script":
            parts.append(("tiny settings", TINY[stage]))
    return parts


# --- README table -----------------------------------------------------------------------------

def solved_in(handouts, root=ROOT):
    """{exercise id: [stages]}: the other stages whose handout (a dict of notebooks by stage)
    holds the exercise's reference solution, i.e. at least 90% of its code lines."""
    found = check_anchors(root)
    solved = {}
    for ex in EXERCISES:
        lines = [line.strip() for region in found[ex.id] for line in region.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        solved[ex.id] = []
        for stage, nb in handouts.items():
            code_lines = {line.strip() for cell in nb["cells"] if cell["cell_type"] == "code"
                          for line in cell["source"].splitlines()}
            if stage != ex.stage and sum(line in code_lines for line in lines) >= 0.9 * len(lines):
                solved[ex.id].append(stage)
    return solved


def exercise_table(solved):
    rows = ["| exercise | stage | what the student writes | learning goal | time | checks | "
            "solution also in handouts |", "|---|---|---|---|---|---|---|"]
    for ex in EXERCISES:
        rows.append(f"| {ex.id} | {ex.stage} | {ex.title} (`{'`, `'.join(ex.defines)}`) | "
                    f"{ex.goal} | {ex.minutes} min | visible + hidden | "
                    f"{', '.join(map(str, solved[ex.id])) or '-'} |")
    return "\n".join(rows) + "\n"


def outputs(root=ROOT):
    """{relative path: text} of everything this tool writes."""
    handouts = {stage: build_handout(stage, "stub", root)
                for stage in range(len(stages.STAGE_FILES))}
    files = {f"{OUT_DIR}/{handout_name(stage)}": dumps(nb) for stage, nb in handouts.items()}
    readme = Path(root) / OUT_DIR / "README.md"
    files[f"{OUT_DIR}/README.md"] = stages.replace_block(
        readme.read_text(encoding="utf-8"), "exercise table", TOOL,
        exercise_table(solved_in(handouts, root)), f"{OUT_DIR}/README.md")
    return files


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if a handout is stale")
    group.add_argument("--solutions", metavar="DIR", help="write handouts with solutions")
    args = parser.parse_args(argv)
    check_anchors()
    if args.solutions:
        for stage in range(len(stages.STAGE_FILES)):
            stages.write_or_check(Path(args.solutions) / handout_name(stage),
                                  dumps(build_handout(stage, "solution")), False, [])
        return 0
    stale = []
    for rel, text in outputs().items():
        stages.write_or_check(ROOT / rel, text, args.check, stale)
    if stale:
        raise CourseError(f"stale (run python {TOOL}): "
                          + ", ".join(str(p.relative_to(ROOT)) for p in stale))
    return 0


if __name__ == "__main__":
    stages.run(main)
