"""Build the companion notebooks notebooks/train*.ipynb and their index notebooks/README.md.

Reads each stage script, its prose notebooks/prose/<stage>.md, the figures of
benchmarks/experiments/figures.json (through stages.fill_figures), and in tools/templates/ the
generated cells (notebook_cells.py), the generated Markdown (notebook_text.md), the try-it cells
(try_it.toml) and the ablations two of them take (ablations.toml).

Each notebook is the stage script, unchanged and complete, split into code cells, with the prose
before (and pictures after) each part. A prose file is Markdown:
  # <title>                         the notebook's title; the paragraph under it is the goal,
  Teaches: <one line>               and this line, also under the title, goes in the index
  ## <section>: <heading text>      prose for the script section `# === <section> ===`
  ### <name>: <heading text>        prose for the part of that section that starts with the
                                    definition or assignment of <name> (a new code cell)
  ## try it: <heading text>         prose around the "try it" cell that ends the notebook
Under a heading, the text before the first ```python block (or before a line `<!-- after -->`)
comes before the code; the rest (text and ```python blocks, which become notebook-only cells
whose first line is `# notebook-only: ...`) comes after it. Every section needs prose, and a
heading that names no section or part is an error. Prose never types a measured figure:
{{exp:KEY}} stands for one (see stages.fill_figures); figures are not part of a notebook's
source hash, so when they change a plain build updates the text and keeps the outputs.

  python tools/make_notebooks.py            build; keeps outputs whose sources did not change
  python tools/make_notebooks.py --execute  build, run each notebook whose outputs are stale at
                                            default settings in a fresh kernel, store the outputs
                                            (all six: about 7 minutes; --force runs them all)
  python tools/make_notebooks.py --check    fail if a notebook or the index differs from a
                                            fresh build or its outputs came from older sources
Needs nbformat; --execute also nbclient, ipykernel, matplotlib.
"""
import argparse
import ast
import copy
import hashlib
import re
import sys
import tomllib
from pathlib import Path

import stages

TOOL_VERSION = "3"   # bump when a change here alters what an executed notebook would show
NOTEBOOK_DIR = "notebooks"
PROSE_DIR = "notebooks/prose"
TOOL = "tools/make_notebooks.py"
CELLS = "notebook_cells.py"   # templates in tools/templates/
TEXT = "notebook_text.md"
FENCE = re.compile(r"^```(\w*)\s*$")
AFTER_MARKER = "<!-- after -->"
TRY_IT_HEADING = "try it"   # the pseudo-section of a prose file that introduces the try-it cell
DEMO_FILES = {3: ["data/repeats.txt", "tools/attention_probe.py"]}   # stage 3's attention demo
COMPUTED = "f'"   # a try-it edit whose new text starts so is an f-string the cell computes


def stem(i):
    return stages.STAGE_FILES[i][:-len(".py")]


def notebook_name(i):
    return f"{stem(i)}.ipynb"


def colab_link(i):
    return stages.colab_url(f"{NOTEBOOK_DIR}/{notebook_name(i)}")


# --- prose ------------------------------------------------------------------------------------

class Unit:
    """The prose of one section or part: text before the code, then (kind, text) items after."""

    def __init__(self, name, heading, where):
        self.name = name
        self.heading = heading
        self.where = where
        self.before = ""
        self.after = []
        self.parts = {}


def split_unit_body(unit, lines):
    """Fill unit.before and unit.after from the Markdown lines under its heading."""
    before = []
    after = []   # ("md" or "code", text)
    code = None
    for line in lines:
        fence = FENCE.match(line)
        if code is not None and fence:
            after.append(("code", "".join(code).rstrip("\n")))
            code = None
        elif code is not None:
            code.append(line)
        elif fence and fence.group(1) != "python":
            raise stages.CourseError(f"{unit.where}: a code block must be ```python (a "
                                     "notebook cell)")
        elif fence:
            code = []
        elif line.strip() == AFTER_MARKER or after:
            after.append(("md", line if line.strip() != AFTER_MARKER else ""))
        else:
            before.append(line)
    if code is not None:
        raise stages.CourseError(f"{unit.where}: a ```python block is not closed")
    unit.before = "".join(before).strip()
    for kind, text in after:   # consecutive Markdown lines make one cell
        if kind == "md" and unit.after and unit.after[-1][0] == "md":
            unit.after[-1] = ("md", unit.after[-1][1] + text)
        else:
            unit.after.append((kind, text))
    unit.after = [(kind, text.strip() if kind == "md" else text) for kind, text in unit.after]
    unit.after = [(kind, text) for kind, text in unit.after if text]
    for kind, text in unit.after:
        if kind == "code" and not text.startswith("# notebook-only:"):
            raise stages.CourseError(f'{unit.where}: a notebook cell must start with '
                                     '"# notebook-only:"')


def prose_blocks(text, path):
    """(title, intro lines, [(level, name, heading, where, lines)]) of a prose file."""
    title, intro, blocks, in_code = None, [], [], False
    for number, line in enumerate(stages.split_lines(text), 1):
        if FENCE.match(line):
            in_code = not in_code
        match = None if in_code else re.match(r"^(#{1,3}) (.+?)\s*$", line)
        if match and len(match.group(1)) == 1:
            if title is not None or blocks:
                raise stages.CourseError(f"{path}:{number}: only one # title, at the top")
            title = match.group(2)
        elif match:
            name, _, heading = match.group(2).partition(":")
            blocks.append((len(match.group(1)), name.strip(), heading.strip(),
                           f"{path}:{number}", []))
        elif blocks:
            blocks[-1][4].append(line)
        else:
            intro.append(line)
    if title is None:
        raise stages.CourseError(f"{path}: no # title line")
    return title, intro, blocks


def parse_prose(text, path):
    """-> (title, goal, {section name: Unit}, teaches) of a prose file: the goal is the paragraph
    under the title, `teaches` the one line after 'Teaches: ' there (for the index)."""
    title, intro, blocks = prose_blocks(text, path)
    teaches = [line for line in intro if line.startswith("Teaches: ")]
    if len(teaches) != 1:
        raise stages.CourseError(f'{path}: needs one "Teaches: ..." line under the title (for '
                                 "the index)")
    intro.remove(teaches[0])
    units = {}
    section = None
    for level, name, heading, where, lines in blocks:
        unit = Unit(name, heading, where)
        split_unit_body(unit, lines)
        if level == 2 and name in units:
            raise stages.CourseError(f'{where}: section "{name}" has prose twice')
        if level == 2:
            units[name] = section = unit
        elif section is None:
            raise stages.CourseError(f"{where}: a ### part heading before any ## section heading")
        elif name in section.parts:
            raise stages.CourseError(f'{where}: part "{name}" has prose twice')
        else:
            section.parts[name] = unit
    return title, "".join(intro).strip(), units, teaches[0][len("Teaches: "):].strip()


def read_prose(i, root):
    """parse_prose of stage i's prose file."""
    path = Path(root) / PROSE_DIR / f"{stem(i)}.md"
    if not path.is_file():
        raise stages.CourseError(f"no prose file {PROSE_DIR}/{path.name}")
    return parse_prose(path.read_text(encoding="utf-8"), f"{PROSE_DIR}/{path.name}")


# --- script -----------------------------------------------------------------------------------

def split_parts(body):
    """Split a section's text where a blank line is followed by a top-level line outside any
    statement (so never inside a docstring or a call); joining the parts gives `body` back.
    Returns [(name, text)], the name being what the part defines or assigns first."""
    lines = stages.split_lines(body)
    inside = set()   # 1-based numbers of the lines that continue a multi-line statement
    for node in ast.parse(body).body:
        inside.update(range(node.lineno + 1, node.end_lineno + 1))
    starts = [0] + [k for k in range(1, len(lines)) if lines[k].strip()
                    and not lines[k][0].isspace() and not lines[k - 1].strip()
                    and k + 1 not in inside]
    return [(part_name(lines[a:b]), "".join(lines[a:b]))
            for a, b in zip(starts, starts[1:] + [len(lines)])]


def part_name(lines):
    for line in lines:
        if line.strip() and not line.startswith("#"):
            match = re.match(r"^(?:def|class)\s+(\w+)|^(\w+)", line)
            return (match.group(1) or match.group(2)) if match else line.strip()
    return ""


def introduced_in(i, section, root):
    """The earliest stage whose text of `section` is identical in every stage up to i."""
    text = dict(stages.read_sections(i, root)).get(section)
    j = i
    while j > 0 and dict(stages.read_sections(j - 1, root)).get(section) == text:
        j -= 1
    return j


# --- cells ------------------------------------------------------------------------------------

def md(text):
    import nbformat
    return nbformat.v4.new_markdown_cell(text, metadata={"microgpt": {"source": "prose"}})


def script_cell(text, section):
    import nbformat
    return nbformat.v4.new_code_cell(text, metadata={"microgpt": {"source": "script",
                                                                  "section": section}})


def notebook_cell(text):
    import nbformat
    return nbformat.v4.new_code_cell(text, metadata={"microgpt": {"source": "notebook-only"}})


def prose_cells(items):
    """Cells of a unit's (kind, text) items after its code."""
    return [md(text) if kind == "md" else notebook_cell(text) for kind, text in items]


def what_changed(i, root):
    """The header's paragraph on what stage i's script changed since stage i-1."""
    if i == 0:
        return stages.template(TEXT, "changed_first")
    added, removed = stages.diff_counts(i, root)
    old_names = [name for name, _ in stages.read_sections(i - 1, root)]
    new_names = [name for name, _ in stages.read_sections(i, root)]
    sections = [f"{name} (new)" if name not in old_names else
                f"{name} (removed)" if name not in new_names else name
                for name in stages.changed_sections(i, root)]
    diff = stages.github_url(f"diffs/{stages.diff_name(i)}.diff")
    return stages.template(TEXT, "changed", before=i - 1, added=added, removed=removed,
                           diff=diff, sections=", ".join(sections))


def header_markdown(i, title, goal, root):
    script = stages.STAGE_FILES[i]
    course = " &rarr; ".join(
        f"**{j} {stages.concept(j)} (you are here)**" if j == i else
        f"[{j} {stages.concept(j)}]({colab_link(j)})" for j in range(len(stages.STAGE_FILES)))
    return stages.template(
        TEXT, "header", title=title, goal=goal, badge=stages.COLAB_BADGE, colab=colab_link(i),
        site=stages.site_url(f"stage{i}.html"),
        script=script, script_url=stages.github_url(script), prose=f"{PROSE_DIR}/{stem(i)}.md",
        course=course, changed=what_changed(i, root),
        experiments=stages.github_url("benchmarks/experiments/README.md"))


def setup_source(i):
    needed = ["data/names.txt", *DEMO_FILES.get(i, []), *try_it_scripts(i)]
    setup = stages.template(CELLS, "setup", repo=stages.GITHUB_REPO, branch=stages.GITHUB_BRANCH,
                            script=stages.STAGE_FILES[i], needed=repr(needed))
    return setup + ("\n\n\n" + stages.template(CELLS, "printout") if i > 0 else "")


def result_cells(i):
    """The "Result" cells that close stage i's script: its val loss in nats and in effective
    choices, next to the previous stage's committed run (its samples at the same temperature)."""
    seeds = stages.template(TEXT, "seeds", stage=i)
    if i == 0:
        return [md(stages.template(TEXT, "result_first", seeds=seeds)),
                notebook_cell(stages.template(CELLS, "result_first", stage=i,
                                              concept=stages.concept(i)))]
    one = i == 1   # stage 0 has no temperature: stage 1 also samples at 1 to compare
    text = stages.template(TEXT, "result", before=i - 1, previous=notebook_name(i - 1),
                           seeds=seeds, temperature_one=" " + stages.template(
                               TEXT, "temperature_one") if one else "")
    code = stages.template(CELLS, "result", stage=i, concept=stages.concept(i), before=i - 1,
                           before_concept=stages.concept(i - 1), previous=notebook_name(i - 1),
                           temperature_one=stages.template(CELLS, "temperature_one") if one
                           else "")
    return [md(text), notebook_cell(code)]


# --- try it -----------------------------------------------------------------------------------

def read_toml(name):
    return tomllib.loads((stages.TEMPLATES / name).read_text(encoding="utf-8"))


def try_it_spec(i):
    """(title, edits, settings of both runs, extra settings of the changed copy) of stage i's
    try-it cell (tools/templates/try_it.toml); edits are exact (old, new) text edits of the
    script, each matching once, or None (a script runs beside this one instead)."""
    spec = read_toml("try_it.toml")[f"stage{i}"]
    if "ablation" in spec:
        ablations = read_toml("ablations.toml")
        found = [a for group in ("full", "stage3") for a in ablations[group]
                 if a["name"] == spec["ablation"]][0]
        spec = {"title": found["title"], "settings": spec["settings"],
                "copy_settings": found.get("settings", []),
                "edits": [ablations["edits"][name] for name in found.get("edits", [])]}
    edits = [tuple(edit) for edit in spec["edits"]] if "edits" in spec else None
    return spec["title"], edits, spec["settings"], spec.get("copy_settings", [])


def try_it_scripts(i):
    """The scripts stage i's try-it cell runs (the setup cell fetches them outside the repo)."""
    other = read_toml("try_it.toml")[f"stage{i}"].get("side_by_side")
    return [other, stages.STAGE_FILES[i]] if other else [stages.STAGE_FILES[i]]


def try_it_source(i):
    title, edits, settings, copy_settings = try_it_spec(i)
    values = {"title": title, "settings": ", ".join(repr(s) for s in settings)}
    if edits is None:
        return stages.template(CELLS, "try_side_by_side", other_script=try_it_scripts(i)[0],
                               **values)
    pairs = [f"    ({old!r}, {new if new.startswith(COMPUTED) else repr(new)})," for old, new
             in edits]
    copy_line = (f"COPY_SETTINGS = {copy_settings!r}   # the changed copy only"
                 if copy_settings else "")
    run = stages.template(CELLS, "copy_run_settings" if copy_settings else "copy_run_plain")
    return stages.template(CELLS, "try_copy", copy_settings=copy_line, edits="\n".join(pairs),
                           copy_run=run, **values)


def try_it_cells(i, unit):
    """The try-it section at the end of stage i's notebook: prose, the cell, prose after."""
    heading = "## Try it" + (f": {unit.heading}" if unit.heading else "")
    return [md(f"{heading}\n\n{unit.before}"), notebook_cell(try_it_source(i)),
            *prose_cells(unit.after)]


# --- the notebook -----------------------------------------------------------------------------

def check_prose(i, units, goal, section_names):
    rel = f"{PROSE_DIR}/{stem(i)}.md"
    for name, unit in units.items():
        if name not in section_names and name != TRY_IT_HEADING:
            raise stages.CourseError(f'{unit.where}: prose for section "{name}", which '
                                     f"{stages.STAGE_FILES[i]} does not have")
    if not goal:
        raise stages.CourseError(f"{rel}: no goal paragraph under the title")
    for name in section_names:
        if name not in units or not units[name].before:
            raise stages.CourseError(f'{rel}: section "{name}" of {stages.STAGE_FILES[i]} has '
                                     "no prose")
    if TRY_IT_HEADING not in units or not units[TRY_IT_HEADING].before:
        raise stages.CourseError(f'{rel}: no "## {TRY_IT_HEADING}: ..." prose for the try-it '
                                 "cell")


def section_status(i, name, root):
    """The line under a section's heading: unchanged since, changed or new in stage i."""
    j = introduced_in(i, name, root)
    if j < i:
        return (f"*Unchanged since stage {j}; [stage {j}'s notebook]({colab_link(j)}) "
                "explains it in depth. A short recap:*")
    if i > 0 and name in dict(stages.read_sections(i - 1, root)):
        return f"*Changed since stage {i - 1}.*"
    return "*New in this stage.*" if i > 0 else ""


def part_groups(name, body, unit):
    """[(prose unit of a part or None, code)]: the section's code cut where its parts' prose
    starts."""
    parts = split_parts(body)
    names = [part for part, _ in parts]
    for part in unit.parts.values():
        if names.count(part.name) != 1:
            found = "no part" if part.name not in names else "several parts"
            raise stages.CourseError(f'{part.where}: section "{name}" has {found} named '
                                     f'"{part.name}" (parts: {", ".join(names)})')
    groups = [[None, ""]]
    for part, text in parts:
        if part in unit.parts and groups[-1][1]:
            groups.append([unit.parts[part], ""])
        elif part in unit.parts:
            groups[-1][0] = unit.parts[part]
        groups[-1][1] += text
    return groups


def section_cells(i, name, body, unit, root):
    """The cells of one script section: its prose, then each part's prose, code and after."""
    heading = f"## {name}" + (f": {unit.heading}" if unit.heading else "")
    status = section_status(i, name, root)
    cells = [md("\n\n".join(t for t in [heading, status, unit.before] if t))]
    for k, (part, code) in enumerate(part_groups(name, body, unit)):
        if part is not None:
            if not part.before:
                raise stages.CourseError(f'{part.where}: part "{part.name}" has no prose')
            text = f"### `{part.name}`" + (f": {part.heading}" if part.heading else "")
            text += f"\n\n{part.before}"
            if k > 0 or cells[-1]["cell_type"] != "markdown":
                cells.append(md(text))
            else:
                cells[-1]["source"] += "\n\n" + text
        cells.append(script_cell(code, name))
        cells += prose_cells(part.after if part is not None else [])
    return cells + prose_cells(unit.after)


def build_cells(i, root):
    """The cells of stage i's notebook (no outputs, figures not filled in) and its title."""
    title, goal, units, _ = read_prose(i, root)
    sections = [(name, body) for name, body in stages.read_sections(i, root) if body]
    check_prose(i, units, goal, [name for name, _ in sections])
    cells = [md(header_markdown(i, title, goal, root)), notebook_cell(setup_source(i))]
    for name, body in sections:
        cells += section_cells(i, name, body, units[name], root)
    cells += result_cells(i) + try_it_cells(i, units[TRY_IT_HEADING])
    for n, cell in enumerate(cells):
        cell["id"] = f"stage{i}-cell{n:03d}"
    return cells, title


def code_text(cells):
    """The code cells' sources, in order, with stages.PLACEHOLDER for the repository's name:
    what a notebook's outputs depend on (tools/repo.py --set rewrites links in place)."""
    code = "\0".join(cell["source"] for cell in cells if cell["cell_type"] == "code")
    return code.replace(f"GITHUB_REPO = '{stages.GITHUB_REPO}'",
                        f"GITHUB_REPO = '{stages.PLACEHOLDER}'")


def source_hash(i, cells, root):
    """SHA-256 of what the outputs of stage i depend on: this tool's version, the notebook's
    code cells, and the previous stage's code cells (the last cell quotes the previous
    notebook's outputs). Prose is left out: rewording it keeps the outputs."""
    h = hashlib.sha256()
    h.update(f"{TOOL_VERSION}\0".encode())
    h.update(code_text(cells).encode())
    if i > 0:
        h.update(b"\0" + code_text(build_cells(i - 1, root)[0]).encode())
    return h.hexdigest()


def build_notebook(i, root):
    """Stage i's notebook without outputs; its source hash leaves the measured figures out."""
    cells, _ = build_cells(i, root)
    digest = source_hash(i, cells, root)
    missing = set()
    for cell in cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = stages.fill_figures(cell["source"], f"{PROSE_DIR}/{stem(i)}.md",
                                                 missing)
    for key in sorted(missing):
        print(f"warning: {notebook_name(i)}: figure {key} is not measured yet", file=sys.stderr)
    return stages.new_notebook(cells, {
        "generated_by": TOOL, "stage": i, "script": stages.STAGE_FILES[i],
        "prose": f"{PROSE_DIR}/{stem(i)}.md", "source_sha256": digest,
        "outputs_from_sha256": None})


def readme_text(root):
    """notebooks/README.md: the index of the notebooks."""
    rows = [f"| {i} | [{notebook_name(i)}]({notebook_name(i)}) [![Open In Colab]"
            f"({stages.COLAB_BADGE})]({colab_link(i)}) | {read_prose(i, root)[3]} |"
            for i in range(len(stages.STAGE_FILES))]
    return stages.template(TEXT, "readme", rows="\n".join(rows), badge=stages.COLAB_BADGE,
                           site=stages.site_url(),
                           epilogue=stages.colab_url(f"{NOTEBOOK_DIR}/epilogue.ipynb")) + "\n"


# --- execute, check, write --------------------------------------------------------------------

def execute(nb, cwd, overrides=None, timeout=1800, try_steps=None):
    """nb run top to bottom in a fresh kernel in `cwd` (stages.execute_notebook); overrides
    {setting: value text} edit the script's settings cell as a learner would; try_steps
    replaces the steps of the try-it runs and of stage 3's attention demo (tests)."""
    if try_steps is not None:
        nb = copy.deepcopy(nb)
        for cell in nb.cells:
            if cell.source.startswith("# notebook-only: try it: "):
                cell.source = re.sub(r"'--num_steps=\d+'", f"'--num_steps={try_steps}'",
                                     cell.source)
            if cell.source.startswith("# notebook-only: attention at work"):
                cell.source = re.sub(r"'num_steps': \d+", f"'num_steps': {try_steps}",
                                     cell.source)
    is_settings = lambda cell: cell.metadata.get("microgpt", {}).get("section") == "settings"
    return stages.execute_notebook(nb, cwd, overrides, is_settings, timeout)


def check(root, which):
    """Problems of the committed notebooks and index, one line each (none: all fresh)."""
    problems = []
    for i in which:
        nb = build_notebook(i, root)
        path = Path(root) / NOTEBOOK_DIR / notebook_name(i)
        old = stages.read_notebook(path)
        if old is None:
            problems.append(f"{path.name}: missing")
            continue
        meta = nb.metadata["microgpt"]
        if stages.cells_without_outputs(old) != stages.cells_without_outputs(nb):
            why = " (a quoted figure changed)" if stages.outputs_kept(nb, old) else ""
            problems.append(f"{path.name}: cells differ from a fresh build{why}")
        if old.metadata.get("microgpt", {}) != {**meta, "outputs_from_sha256":
                                                meta["source_sha256"]}:
            problems.append(f"{path.name}: outputs are missing or come from older sources")
        elif path.read_text(encoding="utf-8") != stages.notebook_text(old):
            problems.append(f"{path.name}: not written by this tool (formatting differs)")
    readme = Path(root) / NOTEBOOK_DIR / "README.md"
    if not readme.is_file() or readme.read_text(encoding="utf-8") != readme_text(root):
        problems.append("README.md: differs from a fresh build")
    return problems


def write_notebook(i, root, execute_it, force):
    """Build stage i's notebook, keep or (execute_it) make its outputs, write it; a note."""
    nb = build_notebook(i, root)
    path = Path(root) / NOTEBOOK_DIR / notebook_name(i)
    old = stages.read_notebook(path)
    kept = stages.outputs_kept(nb, old)
    if kept is not None and not force:
        note = ("unchanged, outputs kept" if stages.notebook_text(kept) ==
                stages.notebook_text(old) else "measured figures updated, outputs kept")
        nb = kept
    elif execute_it:
        nb, seconds = stages.run_for_outputs(nb, path.parent)
        note = f"executed in {seconds:.0f} s"
    else:
        note = "built without outputs (run with --execute to add them)"
    text = stages.notebook_text(nb)
    path.write_text(text, encoding="utf-8")
    figures = sum(1 for c in nb.cells for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {}))
    return (f"{path.relative_to(root)}: {len(nb.cells)} cells, {figures} figures, "
            f"{len(text.encode()) / 1024:.0f} KB, {note}")


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify, write nothing")
    parser.add_argument("--execute", action="store_true", help="run and store the outputs")
    parser.add_argument("--force", action="store_true",
                        help="with --execute: run even the notebooks whose outputs are fresh")
    parser.add_argument("--stages", type=int, nargs="+", choices=range(6), default=range(6),
                        metavar="N", help="only these stages (default: all)")
    args = parser.parse_args()
    root = stages.ROOT
    if args.check:
        problems = check(root, args.stages)
        for problem in problems:
            print(f"{NOTEBOOK_DIR}/{problem}", file=sys.stderr)
        if problems:
            raise stages.CourseError(
                f"notebooks are stale: run python {TOOL}"
                + (" --execute" if any("outputs" in p for p in problems) else ""))
        print("notebooks are up to date")
        return
    (Path(root) / NOTEBOOK_DIR).mkdir(exist_ok=True)
    for i in sorted(args.stages):
        print(write_notebook(i, root, args.execute, args.force))
    (Path(root) / NOTEBOOK_DIR / "README.md").write_text(readme_text(root), encoding="utf-8")


if __name__ == "__main__":
    stages.run(main)
