"""Build notebooks/train*.ipynb, the companion notebooks, and their index notebooks/README.md.

Reads each stage script, its prose notebooks/prose/<stage>.md, the figures of
benchmarks/experiments/figures.json, the generated cells notebooks/prose/cells.py (the
notebooks' own code, beside their prose) and tools/templates/: notebook_text.md, try_it.toml
(the try-it cells, which may name an ablation of ablations.toml). A notebook is its stage
script, unchanged and complete, cut into code cells, with the prose before (and pictures after)
each part. A prose file
(stages.parse_prose) has '# title', the goal paragraph and a 'Teaches: ...' line, then
  ## <section>: <heading>   the prose of the script's section `# === <section> ===`
  ### <name>: <heading>     of the part of that section that starts by defining <name>
  ## try it: <heading>      around the "try it" cell that ends the notebook
Under a heading, the text before the first ```python block (or `<!-- after -->`) comes before
the code, the rest after it, each ```python block a cell starting `# notebook-only: ...`.
Prose and its {{exp:KEY}} figures are not in a notebook's source hash: a build keeps the outputs.

  python tools/make_notebooks.py            build; keeps outputs whose code did not change
  python tools/make_notebooks.py --execute  build and run each notebook whose outputs are stale
                                            in a fresh kernel at the default settings (all six:
                                            about 7 minutes), storing the outputs
  python tools/make_notebooks.py --check    fail if a notebook or the index differs from a
                                            fresh build or its outputs came from older code
Needs nbformat; --execute also nbclient, ipykernel, matplotlib.
"""
import argparse
import ast
import re
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import stages

TOOL_VERSION = "3"   # bump when a change here alters what an executed notebook would show
NOTEBOOK_DIR = "notebooks"
PROSE_DIR = "notebooks/prose"
TOOL = "tools/make_notebooks.py"
CELLS = "notebooks/prose/cells.py"   # the notebooks' generated cells, beside their prose
TEXT = "notebook_text.md"
TRY_IT = "try it"   # the pseudo-section of a prose file that introduces the try-it cell
DEMO_FILES = {3: ["data/repeats.txt", "tools/attention_probe.py"]}   # stage 3's attention demo
TRY_IT_SPECS = tomllib.loads((stages.TEMPLATES / "try_it.toml").read_text(encoding="utf-8"))
ABLATIONS = tomllib.loads((stages.TEMPLATES / "ablations.toml").read_text(encoding="utf-8"))


def stem(i):
    return stages.STAGE_FILES[i][:-len(".py")]


def notebook_name(i):
    return f"{stem(i)}.ipynb"


def colab_link(i):
    return stages.colab_url(f"{NOTEBOOK_DIR}/{notebook_name(i)}")


def cell(text, source, **meta):
    """A Markdown cell (source 'prose') or a code cell ('script', 'notebook-only')."""
    import nbformat
    new = nbformat.v4.new_markdown_cell if source == "prose" else nbformat.v4.new_code_cell
    return new(text, metadata={"microgpt": {"source": source, **meta}})


def read_prose(i, root):
    """(title, goal, {section name: unit}, teaches) of stage i's prose file. A unit, the prose of
    a section or of a part, has its name, heading, where, the text before its code, the cells
    after it and (a section) its parts' units by name."""
    rel = f"{PROSE_DIR}/{stem(i)}.md"
    title, teaches, items = stages.parse_prose((Path(root) / rel).read_text(encoding="utf-8"),
                                               rel)
    goal, units, section, unit = [], {}, None, None
    for kind, text, line in items:
        heading = re.match(r"(#{2,3}) ([^\n]*)\n?", text) if kind == "md" else None
        if heading:
            name, _, words = heading[2].partition(":")
            unit = SimpleNamespace(name=name.strip(), heading=words.strip(), where=f"{rel}:{line}",
                                   before=text[heading.end():].strip(), after=[], parts={})
            if heading[1] == "##":
                section, parts = unit, units
            elif section is None:
                raise stages.CourseError(f"{unit.where}: a ### part heading before any ## "
                                         "section heading")
            else:
                parts = section.parts
            if unit.name in parts:
                raise stages.CourseError(f'{unit.where}: "{unit.name}" has prose twice')
            if not unit.before:
                raise stages.CourseError(f'{unit.where}: "{unit.name}" has no prose')
            parts[unit.name] = unit
        elif unit is None:
            goal.append(text)
        else:
            unit.after.append(cell(text, "prose" if kind == "md" else "notebook-only"))
    return title, "\n\n".join(goal), units, teaches


def check_prose(i, units, goal, section_names):
    rel = f"{PROSE_DIR}/{stem(i)}.md"
    for name, unit in units.items():
        if name not in section_names and name != TRY_IT:
            raise stages.CourseError(f'{unit.where}: prose for section "{name}", which '
                                     f"{stages.STAGE_FILES[i]} does not have")
    if not goal:
        raise stages.CourseError(f"{rel}: no goal paragraph under the title")
    for name in [*section_names, TRY_IT]:
        if name not in units:
            raise stages.CourseError(f'{rel}: section "{name}" of {stages.STAGE_FILES[i]} has '
                                     "no prose")


def section_parts(name, body, unit):
    """[(prose unit of a part or None, code)]: section `name`'s code cut where a part named in
    its prose starts. A part starts at a top-level line after a blank line, outside any
    statement, and is named by what it defines or assigns first."""
    lines = stages.split_lines(body)
    inside = {n for node in ast.parse(body).body   # lines that continue a statement (from 1)
              for n in range(node.lineno + 1, node.end_lineno + 1)}
    starts = [0] + [k for k in range(1, len(lines)) if lines[k].strip()
                    and not lines[k][0].isspace() and not lines[k - 1].strip()
                    and k + 1 not in inside]
    names = [part_name(lines[a:b]) for a, b in zip(starts, starts[1:] + [len(lines)])]
    for part in unit.parts.values():
        if names.count(part.name) != 1:
            found = "no part" if part.name not in names else "several parts"
            raise stages.CourseError(f'{part.where}: section "{name}" has {found} named '
                                     f'"{part.name}" (parts: {", ".join(names)})')
    cuts = [(0, unit.parts.get(names[0]))] + [(k, unit.parts[n]) for k, n in
                                              zip(starts[1:], names[1:]) if n in unit.parts]
    ends = [k for k, _ in cuts[1:]] + [len(lines)]
    return [(part, "".join(lines[k:end])) for (k, part), end in zip(cuts, ends)]


def part_name(lines):
    for line in lines:
        if line.strip() and not line.startswith("#"):
            match = re.match(r"^(?:def|class)\s+(\w+)|^(\w+)", line)
            return (match.group(1) or match.group(2)) if match else line.strip()
    return ""


def section_status(i, name, root):
    """The line under a section's heading: unchanged since stage j, changed or new."""
    text = dict(stages.read_sections(i, root)).get(name)
    j = i
    while j > 0 and dict(stages.read_sections(j - 1, root)).get(name) == text:
        j -= 1
    if j < i:
        return (f"*Unchanged since stage {j}; [stage {j}'s notebook]({colab_link(j)}) "
                "explains it in depth. A short recap:*")
    if i > 0 and name in dict(stages.read_sections(i - 1, root)):
        return f"*Changed since stage {i - 1}.*"
    return "*New in this stage.*" if i > 0 else ""


def section_cells(i, name, body, unit, root):
    """The cells of one script section: its prose, then each part's prose, code and after."""
    heading = f"## {name}" + (f": {unit.heading}" if unit.heading else "")
    cells = [cell("\n\n".join(t for t in [heading, section_status(i, name, root), unit.before]
                              if t), "prose")]
    for k, (part, code) in enumerate(section_parts(name, body, unit)):
        if part is not None:
            text = f"### `{part.name}`" + (f": {part.heading}" if part.heading else "")
            text += f"\n\n{part.before}"
            if k > 0:
                cells.append(cell(text, "prose"))
            else:   # the first part's prose joins the section's
                cells[-1].source += "\n\n" + text
        cells.append(cell(code, "script", section=name))
        cells += part.after if part is not None else []
    return cells + unit.after


def header_markdown(i, title, goal, root):
    script = stages.STAGE_FILES[i]
    course = " &rarr; ".join(
        f"**{j} {stages.CONCEPTS[j]} (you are here)**" if j == i else
        f"[{j} {stages.CONCEPTS[j]}]({colab_link(j)})" for j in range(len(stages.STAGE_FILES)))
    if i == 0:
        changed = stages.template(TEXT, "changed_first")
    else:
        added, removed = stages.diff_counts(i, root)
        changed = stages.template(
            TEXT, "changed", before=i - 1, added=added, removed=removed,
            diff=stages.github_url(f"diffs/{stages.diff_name(i)}.diff"),
            sections=", ".join(stages.changed_sections(i, root, labelled=True)))
    return stages.template(
        TEXT, "header", title=title, goal=goal, badge=stages.COLAB_BADGE, colab=colab_link(i),
        site=stages.site_url(f"stage{i}.html"),
        script=script, script_url=stages.github_url(script), prose=f"{PROSE_DIR}/{stem(i)}.md",
        course=course, changed=changed,
        experiments=stages.github_url("benchmarks/experiments/README.md"))


def setup_source(i):
    needed = ["data/names.txt", *DEMO_FILES.get(i, []), *try_it_scripts(i)]
    setup = stages.template(CELLS, "setup", repo=stages.GITHUB_REPO, branch=stages.GITHUB_BRANCH,
                            script=stages.STAGE_FILES[i], needed=repr(needed))
    return setup + ("\n\n\n" + stages.template(CELLS, "printout") if i > 0 else "")


def result_cells(i):
    """The "Result" cells after stage i's script, beside the previous stage's committed run."""
    seeds = stages.template(TEXT, "seeds", stage=i)
    if i == 0:
        return [cell(stages.template(TEXT, "result_first", seeds=seeds), "prose"),
                cell(stages.template(CELLS, "result_first", stage=i, concept=stages.CONCEPTS[i]),
                     "notebook-only")]
    one = i == 1   # stage 0 has no temperature: stage 1 also samples at 1 to compare
    text = stages.template(TEXT, "result", before=i - 1, previous=notebook_name(i - 1),
                           seeds=seeds, temperature_one=" " + stages.template(
                               TEXT, "temperature_one") if one else "")
    code = stages.template(CELLS, "result", stage=i, concept=stages.CONCEPTS[i], before=i - 1,
                           before_concept=stages.CONCEPTS[i - 1], previous=notebook_name(i - 1),
                           temperature_one=stages.template(CELLS, "temperature_one") if one
                           else "")
    return [cell(text, "prose"), cell(code, "notebook-only")]


def try_it_spec(i):
    """(title, edits, settings of both runs, extra settings of the changed copy) of stage i's
    try-it cell; edits: (old, new) text pairs, or None (a script runs beside this one)."""
    spec = TRY_IT_SPECS[f"stage{i}"]
    if "ablation" in spec:   # one of the experiments' ablations (tools/templates/ablations.toml)
        found = [a for group in ("full", "stage3") for a in ABLATIONS[group]
                 if a["name"] == spec["ablation"]][0]
        edits = [tuple(ABLATIONS["edits"][name]) for name in found.get("edits", [])]
        return found["title"], edits, spec["settings"], found.get("settings", [])
    edits = [tuple(edit) for edit in spec["edits"]] if "edits" in spec else None
    return spec["title"], edits, spec["settings"], spec.get("copy_settings", [])


def try_it_scripts(i):
    """The scripts stage i's try-it cell runs (the setup cell fetches them outside the repo)."""
    other = TRY_IT_SPECS[f"stage{i}"].get("side_by_side")
    return [other, stages.STAGE_FILES[i]] if other else [stages.STAGE_FILES[i]]


def try_it_source(i):
    title, edits, settings, copy_settings = try_it_spec(i)
    values = {"title": title, "settings": ", ".join(repr(s) for s in settings)}
    if edits is None:
        return stages.template(CELLS, "try_side_by_side", other_script=try_it_scripts(i)[0],
                               **values)
    computed = "f'"   # a new text that starts so is an f-string the cell computes
    pairs = [f"    ({old!r}, {new if new.startswith(computed) else repr(new)}),"
             for old, new in edits]
    copy_line = (f"COPY_SETTINGS = {copy_settings!r}   # the changed copy only"
                 if copy_settings else "")
    run = stages.template(CELLS, "copy_run_settings" if copy_settings else "copy_run_plain")
    return stages.template(CELLS, "try_copy", copy_settings=copy_line, edits="\n".join(pairs),
                           copy_run=run, **values)


def build_cells(i, root):
    """The cells of stage i's notebook (no outputs, figures not filled in)."""
    title, goal, units, _ = read_prose(i, root)
    sections = [(name, body) for name, body in stages.read_sections(i, root) if body]
    check_prose(i, units, goal, [name for name, _ in sections])
    cells = [cell(header_markdown(i, title, goal, root), "prose"),
             cell(setup_source(i), "notebook-only")]
    for name, body in sections:
        cells += section_cells(i, name, body, units[name], root)
    try_it = units[TRY_IT]
    heading = "## Try it" + (f": {try_it.heading}" if try_it.heading else "")
    cells += [*result_cells(i), cell(f"{heading}\n\n{try_it.before}", "prose"),
              cell(try_it_source(i), "notebook-only"), *try_it.after]
    for n, one in enumerate(cells):
        one.id = f"stage{i}-cell{n:03d}"
    return cells


def build_notebook(i, root):
    """Stage i's notebook without outputs. Its source hash covers this tool's version and the code
    cells of this and the previous notebook (whose outputs its last cell quotes)."""
    cells = build_cells(i, root)
    previous = stages.code_sources(build_cells(i - 1, root)) if i > 0 else []
    source = "\0".join([TOOL_VERSION, *stages.code_sources(cells), *previous])
    missing = set()
    for one in cells:
        if one.cell_type == "markdown":
            one.source = stages.fill_figures(one.source, f"{PROSE_DIR}/{stem(i)}.md", missing)
    for key in sorted(missing):
        print(f"warning: {notebook_name(i)}: figure {key} is not measured yet", file=sys.stderr)
    return stages.new_notebook(cells, {
        "generated_by": TOOL, "stage": i, "script": stages.STAGE_FILES[i],
        "prose": f"{PROSE_DIR}/{stem(i)}.md", "outputs_from_sha256": None,
        "source_sha256": stages.sha256(source)})


def readme_text(root):
    rows = [f"| {i} | [{notebook_name(i)}]({notebook_name(i)}) [![Open In Colab]"
            f"({stages.COLAB_BADGE})]({colab_link(i)}) | {read_prose(i, root)[3]} |"
            for i in range(len(stages.STAGE_FILES))]
    return stages.template(TEXT, "readme", rows="\n".join(rows), badge=stages.COLAB_BADGE,
                           site=stages.site_url(),
                           epilogue=stages.colab_url(f"{NOTEBOOK_DIR}/epilogue.ipynb")) + "\n"


def check(root, which):
    """Problems of the committed notebooks and index, one line each (none: all fresh)."""
    problems = [problem for i in which for problem in stages.notebook_problems(
        build_notebook(i, root), Path(root) / NOTEBOOK_DIR / notebook_name(i), notebook_name(i))]
    if stages.write_or_check(Path(root) / NOTEBOOK_DIR / "README.md", readme_text(root), True, []):
        problems.append("README.md: differs from a fresh build")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify, write nothing")
    parser.add_argument("--execute", action="store_true", help="run and store stale outputs")
    args = parser.parse_args()
    root = stages.ROOT
    if args.check:
        problems = check(root, range(len(stages.STAGE_FILES)))
        for problem in problems:
            print(f"{NOTEBOOK_DIR}/{problem}", file=sys.stderr)
        if problems:
            raise stages.CourseError(
                f"notebooks are stale: run python {TOOL}"
                + (" --execute" if any("outputs" in p for p in problems) else ""))
        print("notebooks are up to date")
        return
    for i in range(len(stages.STAGE_FILES)):
        path = Path(root) / NOTEBOOK_DIR / notebook_name(i)
        nb, note = stages.outputs_for(build_notebook(i, root), path, args.execute)
        path.write_text(stages.notebook_text(nb), encoding="utf-8")
        print(f"{NOTEBOOK_DIR}/{path.name}: {note}")
    stages.write_or_check(Path(root) / NOTEBOOK_DIR / "README.md", readme_text(root), False, [])


if __name__ == "__main__":
    stages.run(main)
