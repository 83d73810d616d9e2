"""Write the student handouts; load the exercises that grade.py and nbgrader_course.py grade.

Writes: notebooks/exercises/exercisesN_*.ipynb (one handout per stage: its companion notebook
with the exercises' regions stubbed) and the exercise table of notebooks/exercises/README.md.
Reads: tools/exercises.toml (the exercises: regions of the stage scripts found by their text,
instructions, TODOs, plausible answers), the stage scripts, the companion notebooks
notebooks/trainN_*.ipynb, tools/templates/handout_intro.md, and in notebooks/exercises/checks/
the cells written around the course's code (cells.py) and the handouts' checks, helpers.py and
visible.py (copied as they are).
Written with json.dumps: nbformat's writer would store sources as lists of lines.

  python tools/exercises.py            write the handouts and the README table
  python tools/exercises.py --check    write nothing; fail if one is stale
"""
import argparse
import ast
import json
import re
import textwrap
import tomllib
from pathlib import Path
from types import SimpleNamespace

import stages
from stages import CourseError

ROOT = stages.ROOT
TOOL = "tools/exercises.py"
OUT_DIR = "notebooks/exercises"
CHECKS_DIR = ROOT / OUT_DIR / "checks"   # course material: helpers.py, visible.py, probes.py
CELLS = "notebooks/exercises/checks/cells.py"   # the code written around the course's own
COMPANIONS = [name[:-len(".py")] + ".ipynb" for name in stages.STAGE_FILES]   # notebooks/
GRADER_SECTIONS = ("training", "evaluation", "sampling")   # never run by the grader
REQUIRED = {"id", "stage", "name", "title", "minutes", "goal", "instructions", "target"}
OPTIONAL = {"points": 10, "defines": [], "asks": "", "together": False, "wrong": [], "right": []}


def load(path=ROOT / "tools" / "exercises.toml"):
    """(exercises, tiny settings by stage) of the exercises file; CourseError if malformed."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        exs = []
        for raw in data["exercise"]:
            if not REQUIRED <= raw.keys() <= REQUIRED | OPTIONAL.keys():
                raise TypeError(f"exercise {raw.get('id')} has the fields {sorted(raw)}")
            ex = SimpleNamespace(**{**OPTIONAL, **raw})
            ex.targets = [SimpleNamespace(kind="body" if "body" in t else "lines" if "lines" in t
                                          else "extract", **{"returns": "", "solution": "", **t})
                          for t in ex.target]
            ex.defines = ex.defines or [t.signature.split("(")[0] if t.kind == "extract"
                                        else t.body for t in ex.targets]
            exs.append(ex)
        return exs, {int(k): v for k, v in data["tiny"].items()}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as e:
        raise CourseError(f"{path}: {type(e).__name__}: {e}") from None


EXERCISES, TINY = load()
BY_ID = {ex.id: ex for ex in EXERCISES}


def stage_exercises(stage):
    return [ex for ex in EXERCISES if ex.stage == stage]


def handout_name(stage):
    return "exercises" + stages.STAGE_FILES[stage][len("train"):-len(".py")] + ".ipynb"


def top_level(path):
    """[(node, its exact source)] for the top-level statements of a Python file."""
    text = Path(path).read_text(encoding="utf-8")
    lines = stages.split_lines(text)
    return [(node, "".join(lines[min([node.lineno] + [d.lineno for d in getattr(
        node, "decorator_list", [])]) - 1:node.end_lineno])) for node in ast.parse(text).body]


def helpers_source():
    """The handouts' helper cell: helpers.py but its ruff line, visible.py's non-checks."""
    text = (CHECKS_DIR / "helpers.py").read_text(encoding="utf-8").split("\n", 1)[1]
    return text + "".join("\n\n" + source for node, source in top_level(CHECKS_DIR / "visible.py")
                          if not getattr(node, "name", "check_").startswith("check_"))


def region_text(script, target):
    """The exact text of a target's region in the script (tools/exercises.toml says how each
    kind is found); CourseError unless it is found once."""
    if target.kind == "body":
        func = ast.parse(script)
        for part in target.body.split("."):   # "f" or "Class.method"
            func = next((node for node in func.body if getattr(node, "name", "") == part), None)
            if func is None:
                raise CourseError(f"function {target.body} not found")
        first = func.body[0]
        start = first.end_lineno if ast.get_docstring(func) is not None else first.lineno - 1
        text = "".join(stages.split_lines(script)[start:func.end_lineno])
    elif target.kind == "lines":
        text = target.lines
    else:
        start = script.find(target.start + "\n")
        if start < 0 or (start > 0 and script[start - 1] != "\n"):
            raise CourseError(f"line not found: {target.start.strip()!r}")
        end = script.find(target.end + "\n", start)
        if end < 0:
            raise CourseError(f"line not found after the start: {target.end.strip()!r}")
        text = script[start:end + len(target.end.split("\n")[0]) + 1]   # to end's first line
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


def written(ex, target, region, mode):
    """What a region becomes in a mode: 'stub', 'solution', or 'nbgrader' (the TODO, then the
    solution between nbgrader's markers); an extract's region, the body of its new function."""
    if target.kind == "extract":
        pad, head = "    ", f'def {target.signature}:\n    """{target.doc}"""\n'
        returns = f"return {target.returns}\n" if target.returns else ""
        region = textwrap.indent(target.solution or textwrap.dedent(region) + returns, pad)
    else:
        pad, head = " " * (len(region.lstrip("\n")) - len(region.lstrip("\n").lstrip(" "))), ""
    first, *more = target.todo.split("\n")
    todo = f"{pad}# TODO(exercise {ex.id}): {first}\n" + "".join(f"{pad}{line.strip()}\n"
                                                                   for line in more)
    if mode == "stub":
        return f"{head}{todo}{pad}raise NotImplementedError('exercise {ex.id}: {ex.title}')\n"
    if mode == "nbgrader":
        return f"{head}{todo}{pad}### BEGIN SOLUTION\n{region}{pad}### END SOLUTION\n"
    return head + region


def extracted(ex, regions, mode):
    return [written(ex, t, regions[ex.id, k], mode)
            for k, t in enumerate(ex.targets) if t.kind == "extract"]


def md(text, meta):
    return {"cell_type": "markdown", "metadata": {"microgpt": meta}, "source": text}


def code(text, meta):
    return {"cell_type": "code", "metadata": {"microgpt": meta}, "source": text,
            "outputs": [], "execution_count": None}


def exercise_cells(exs, source, section):
    """Instructions for each exercise, the one code cell they share, a check cell for each."""
    checks = {node.name: text for node, text in top_level(CHECKS_DIR / "visible.py")
              if isinstance(node, ast.FunctionDef)}
    cells = [md(f"### Exercise {ex.id}: {ex.title} (about {ex.minutes} minutes, {ex.points} "
                f"points)\n\n**Goal:** {ex.goal}.\n\n{ex.instructions}",
                {"source": "instructions", "exercise": ex.id}) for ex in exs]
    cells.append(code(source, {"source": "exercise", "exercises": [ex.id for ex in exs],
                               "section": section}))
    for ex in exs:
        if f"check_{ex.name}" not in checks:
            raise CourseError(f"notebooks/exercises/checks/visible.py has no check_{ex.name}")
        cells.append(code(stages.template(CELLS, "check", id=ex.id, function=f"check_{ex.name}",
                                          check=checks[f"check_{ex.name}"][:-1]) + "\n",
                          {"source": "check", "exercise": ex.id}))
    return cells


def split_top_level(text, line_numbers):
    """[(chunk, first, last)]: a cell's code cut so that each top-level statement holding one
    of the (1-based) line numbers is a chunk of its own, lines first..last."""
    lines = stages.split_lines(text)
    cuts = [0]
    for node in ast.parse(text).body:
        if any(node.lineno <= n <= node.end_lineno for n in line_numbers):
            end = node.end_lineno
            while end < len(lines) and lines[end][:1] == " " and lines[end].strip()[:1] == "#":
                end += 1   # an indented comment after the body belongs to it
            cuts += [node.lineno - 1 - len(getattr(node, "decorator_list", [])), end]
    cuts.append(len(lines))
    return [("".join(lines[a:b]).strip("\n") + "\n", a + 1, b)
            for a, b in zip(cuts, cuts[1:]) if "".join(lines[a:b]).strip()]


def script_cells(source, section, exs, regions, modes):
    """A script cell's handout cells: an exercise that only extracts gets a cell before it; a
    statement holding a stubbed region is an exercise cell, with its exercises' extractions."""
    text, cells, stubs, edits = source, [], [], 0
    for ex in exs:
        for k, target in enumerate(ex.targets):
            region = regions[ex.id, k]
            edits += region in text
            if region in text and target.kind != "extract":
                stubs.append((written(ex, target, region, modes[ex.id]), ex))
                text = text.replace(region, stubs[-1][0])
            elif region in text:
                text = text.replace(region, target.call + "\n")
                if k == 0 and {t.kind for t in ex.targets} == {"extract"}:
                    functions = extracted(ex, regions, modes[ex.id])
                    cells += exercise_cells([ex], "\n\n".join(functions), section)
    if not edits:
        return [code(text, {"source": "script", "section": section})]
    if any(new not in text for new, _ in stubs):
        raise CourseError(f"{section}: an exercise's stub is lost from the handout's cell")
    stubs = [(text[:text.find(new)].count("\n") + 1, ex) for new, ex in stubs]
    for chunk, first, last in split_top_level(text, [line for line, _ in stubs]):
        owners = list({ex.id: ex for line, ex in stubs if first <= line <= last}.values())
        if not owners:   # a chunk between the statements holding a stub
            cells.append(code(chunk, {"source": "script", "section": section}))
            continue
        functions = [f for ex in owners for f in extracted(ex, regions, modes[ex.id])]
        cells += exercise_cells(owners, "\n\n".join([chunk, *functions]), section)
    return cells


# A handout never links to what holds its solutions: a companion notebook, a script or a diff
# (such a link becomes its text). The companion header's badge, provenance, diff summary and
# how-to go; so does the try-it part, which runs the stage script.
SOLUTION_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*(?:train\d\w*\.(?:ipynb|py)|diffs/[^)\s]*)\)")
HEADER_DROPPED = ("[![Open In Colab]", "*Generated by", "**What changed", "**How to use it")


def load_companion(stage):
    """A stage's companion notebook, each source one string; CourseError if it is stale."""
    nb = json.loads((ROOT / "notebooks" / COMPANIONS[stage]).read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell["source"] = "".join(cell["source"])
    if "".join(c["source"] for c in nb["cells"] if c["metadata"]["microgpt"].get("source")
               == "script") != stages.read_stage(stage):
        raise CourseError(f"{COMPANIONS[stage]} is not {stages.STAGE_FILES[stage]}: run "
                          "python tools/make_notebooks.py first")
    return nb


def asked(text, ex):
    """The prose with the column ex.asks of its tables turned into question marks below the first
    row (the worked example), so that the answers of exercise ex are not printed before it."""
    out, column = [], None
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
    """A companion cell that is not the script's, as the handout holds it."""
    if cell["cell_type"] == "markdown":
        if header:
            cell["source"] = "\n\n".join(p for p in cell["source"].split("\n\n")
                                         if not p.startswith(HEADER_DROPPED))
        for ex in exs:
            cell["source"] = asked(cell["source"], ex) if ex.asks else cell["source"]
        cell["source"] = SOLUTION_LINK.sub(r"\1", cell["source"])
        return [cell]
    cell["outputs"], cell["execution_count"] = [], None
    if not cell["source"].startswith("# notebook-only: setup"):
        return [cell]
    # the companion's setup cell without its first comment, fetching only the data
    text = re.sub(r"\A(#.*\n)*", "", cell["source"])
    text = re.sub(r"^NEEDED = \[.*$", "NEEDED = ['data/names.txt']", text, count=1, flags=re.M)
    cell["source"] = stages.template(CELLS, "setup", code=text)
    return [cell, code(helpers_source(), {"source": "notebook-only"})]


def build_handout(stage, mode="stub", solved=()):
    """A stage's handout (a dict), its exercises written() in `mode` (those in `solved`, in
    'solution' mode whatever the mode: the grader's context)."""
    nb = load_companion(stage)
    exs = stage_exercises(stage)
    modes = {ex.id: "solution" if ex.id in solved else mode for ex in exs}
    regions = stage_regions(stage)
    intro = stages.template(
        "handout_intro.md", "intro", tool=TOOL, companion=COMPANIONS[stage], stage=stage,
        concept=stages.CONCEPTS[stage], total=sum(ex.minutes for ex in exs),
        badge=f"[![Open In Colab]({stages.COLAB_BADGE})]"
              f"({stages.colab_url(f'{OUT_DIR}/{handout_name(stage)}')})",
        rows="\n".join(f"| {ex.id} | {ex.title} | {ex.minutes} min | {ex.points} |"
                       for ex in exs))
    cells = [md(intro, {"source": "exercises"})]
    for cell in nb["cells"]:
        meta = cell["metadata"]["microgpt"]
        if cell["cell_type"] == "markdown" and cell["source"].startswith("## Try it:"):
            break
        if meta.get("source") == "script":
            cells += script_cells(cell["source"], meta["section"], exs, regions, modes)
        elif "open(__file__" not in cell["source"]:   # a cell reading the script is left out
            cells += notebook_cells(cell, cell is nb["cells"][0], exs)
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
    nb["cells"] = cells
    nb["metadata"]["microgpt"] = {"generated_by": TOOL, "stage": stage, "mode": mode,
                                  "companion": f"notebooks/{COMPANIONS[stage]}",
                                  "exercises": [ex.id for ex in exs]}
    return nb


def dumps(nb):
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def grader_context(stage, ex_id):
    """[(label, source)] the grader runs before exercise ex_id's cell: the handout's code but
    GRADER_SECTIONS, tiny settings, the stage's other exercises solved (for the probes)."""
    parts = []
    others = {ex.id for ex in stage_exercises(stage)} - {ex_id}
    for cell in build_handout(stage, "stub", solved=others)["cells"]:
        meta = cell["metadata"]["microgpt"]
        kind, section = meta.get("source"), meta.get("section", "")
        if kind == "exercise" or kind == "script" and section not in GRADER_SECTIONS:
            parts.append((section, cell["source"]))
            if kind == "script" and section == "settings":
                parts.append(("tiny settings", TINY[stage]))
    return parts


def exercise_table(handouts):
    """The README's table; its last column, the other stages whose handout (in `handouts`, by
    stage) holds 90% or more of the code lines of an exercise's reference solution."""
    found = check_anchors()
    rows = ["| exercise | stage | what the student writes | learning goal | time | checks | "
            "solution also in handouts |", "|---|---|---|---|---|---|---|"]
    code_lines = {stage: {line.strip() for cell in nb["cells"] if cell["cell_type"] == "code"
                          for line in cell["source"].splitlines()}
                  for stage, nb in handouts.items()}
    for ex in EXERCISES:
        lines = [line.strip() for region in found[ex.id] for line in region.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        solved = [str(stage) for stage, have in code_lines.items() if stage != ex.stage
                  and sum(line in have for line in lines) >= 0.9 * len(lines)]
        rows.append(f"| {ex.id} | {ex.stage} | {ex.title} (`{'`, `'.join(ex.defines)}`) | "
                    f"{ex.goal} | {ex.minutes} min | visible + hidden | "
                    f"{', '.join(solved) or '-'} |")
    return "\n".join(rows) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a handout is stale")
    check = parser.parse_args(argv).check
    handouts = {stage: build_handout(stage) for stage in range(len(stages.STAGE_FILES))}
    files = {f"{OUT_DIR}/{handout_name(stage)}": dumps(nb) for stage, nb in handouts.items()}
    readme = f"{OUT_DIR}/README.md"
    files[readme] = stages.replace_block((ROOT / readme).read_text(encoding="utf-8"),
                                         "exercise table", TOOL, exercise_table(handouts), readme)
    stale = []
    for rel, text in files.items():
        stages.write_or_check(ROOT / rel, text, check, stale)
    if stale:
        raise CourseError(f"stale (run python {TOOL}): "
                          + ", ".join(str(p.relative_to(ROOT)) for p in stale))
    return 0


if __name__ == "__main__":
    stages.run(main)
