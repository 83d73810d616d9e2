"""What the course tools truly share: the six stage scripts (paths, sections, diffs, running one
and parsing its output); where the course is published (its GitHub repository and links); the
one error type; write-or-check, the generated-block markers and the templates; the notebooks'
prose parser, their {{exp:KEY}} figures and the steps that keep, run or check their outputs.

A stage script is a docstring, imports, then sections, each introduced by a header line
`# === name ===`. Everything before the first header is the section named 'preamble'.
It imports no other tool; only the notebook steps need nbformat and nbclient (imported where
used). Functions that read the repository take an optional `root`.
"""
import ast
import contextlib
import difflib
import hashlib
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # repository root
STAGE_FILES = ["train0_bigram.py", "train1_mlp_manual_grad.py", "train2_autograd.py",
               "train3_single_head.py", "train4_multihead.py", "train5_adam.py"]
CONCEPTS = {  # the one concept each stage adds, for tables and page titles
    0: "bigram counts",
    1: "MLP + manual gradients",
    2: "scalar autograd",
    3: "single-head attention",
    4: "multi-head, layers",
    5: "Adam optimizer",
}
HEADER = re.compile(r"^# === (.+) ===$")

# Where the course is published. `python tools/repo.py --set owner/name` rewrites this line and
# every link in the published files; nothing else names the repository.
GITHUB_REPO = "microgpt-course/microgpt-course"
GITHUB_BRANCH = "main"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
PLACEHOLDER = "OWNER/NAME"  # what the notebooks' source hash sees instead of GITHUB_REPO


def colab_url(path):
    """Open-in-Colab URL of the notebook at `path`, relative to the repository root."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{GITHUB_BRANCH}/{path}"


def github_url(path):
    """URL of `path` (relative to the repository root) on GitHub."""
    return f"https://github.com/{GITHUB_REPO}/blob/{GITHUB_BRANCH}/{path}"


def site_url(page=""):
    """URL of `page` on the course's in-browser site (GitHub Pages of GITHUB_REPO)."""
    owner, name = GITHUB_REPO.split("/")
    return f"https://{owner.lower()}.github.io/{name}/{page}"


class CourseError(Exception):
    """A problem the user can fix, reported as one line (`error: ...`), never a traceback."""


def run(main):
    """Call `main()`; a CourseError (or OSError) becomes one line on stderr and exit status 1.
    Tools end with `if __name__ == "__main__": stages.run(main)`."""
    try:
        status = main()
    except (CourseError, OSError) as error:
        sys.exit(f"error: {error}")
    sys.exit(status or 0)


def write_or_check(path, text, check, stale):
    """Write `text` to `path` (check=False), or with check=True write nothing and append `path`
    to the list `stale` when the file differs from `text`. Returns True if the file changed or
    would change. Text is written as UTF-8 with '\\n' line endings, byte for byte."""
    path = Path(path)
    old = path.read_bytes() if path.exists() else None
    new = text.encode("utf-8")
    if old == new:
        return False
    if check:
        stale.append(path)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(new)
    return True


def markers(name, tool):
    """The (begin, end) comment lines around a generated block `name` in a Markdown page."""
    return (f"<!-- BEGIN generated: {name} ({tool}) -->",
            f"<!-- END generated: {name} ({tool}) -->")


def replace_block(text, name, tool, content, where="the page"):
    """`text` with the lines between the marker lines of block `name` (from `tool`) replaced by
    `content` (ending in a newline); CourseError unless each marker is there once, in order."""
    begin, end = markers(name, tool)
    lines = text.split("\n")
    if lines.count(begin) != 1 or lines.count(end) != 1:
        raise CourseError(f"{where} needs the marker line {begin!r} once, and {end!r} once")
    i, j = lines.index(begin), lines.index(end)
    if j < i:
        raise CourseError(f"{where} has {end!r} before {begin!r}")
    return "\n".join(lines[: i + 1]) + "\n" + content + "\n".join(lines[j:])


def stage_path(i, root=ROOT):
    """Path of stage script i (0-5)."""
    if not 0 <= i < len(STAGE_FILES):
        raise IndexError(f"no stage {i}; stages are 0-{len(STAGE_FILES) - 1}")
    return Path(root) / STAGE_FILES[i]


def read_stage(i, root=ROOT):
    """Exact text of stage script i (line endings untouched)."""
    return stage_path(i, root).read_bytes().decode("utf-8")


def split_lines(text):
    """Lines of text, each keeping its '\\n'. Splits on '\\n' only, as git and patch do
    (str.splitlines would also split on '\\x0c', '\\u2028' and others)."""
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]  # the part after the last '\n' has no newline of its own
    if lines[-1] == "":
        lines.pop()
    return lines


def split_sections(text):
    """Ordered (name, text) pairs; the first is ('preamble', ...), possibly with empty text.
    A header line belongs to its section, so joining the texts gives back `text` exactly."""
    sections = [["preamble", ""]]
    for line in split_lines(text):
        match = HEADER.match(line.rstrip("\r\n"))
        if match:
            sections.append([match.group(1), ""])
        sections[-1][1] += line
    return [(name, body) for name, body in sections]


def read_sections(i, root=ROOT):
    """split_sections of stage script i."""
    return split_sections(read_stage(i, root))


def summary(i, root=ROOT):
    """First line of stage i's module docstring ('' if it has none)."""
    docstring = ast.get_docstring(ast.parse(read_stage(i, root))) or ""
    return docstring.strip().split("\n")[0]


def stage_diff(i, root=ROOT):
    """Unified diff (n=3, labels a/<old> and b/<new>, no timestamps) from stage i-1 to i."""
    if i < 1:
        raise IndexError("stage 0 has no previous stage")
    old = split_lines(read_stage(i - 1, root))
    new = split_lines(read_stage(i, root))
    diff = difflib.unified_diff(old, new, f"a/{STAGE_FILES[i - 1]}", f"b/{STAGE_FILES[i]}", n=3)
    out = ""
    for line in diff:
        out += line
        if not line.endswith("\n"):  # last line of a file without a final newline
            out += "\n\\ No newline at end of file\n"
    return out


def changed_sections(i, root=ROOT, labelled=False):
    """Names of sections of stage i that are new or whose text (header included) differs
    from stage i-1, in stage i's order, then names of sections stage i removed; labelled:
    each new one as 'name (new)' and each removed one as 'name (removed)'."""
    if i < 1:
        raise IndexError("stage 0 has no previous stage")
    old, new = read_sections(i - 1, root), read_sections(i, root)

    def texts(sections, name):
        return [body for n, body in sections if n == name]
    changed = [name for name in dict.fromkeys(n for n, _ in new)   # each name once, in order
               if texts(old, name) != texts(new, name)]
    removed = [name for name in dict.fromkeys(n for n, _ in old) if name not in dict(new)]
    if labelled:
        changed = [name if name in dict(old) else f"{name} (new)" for name in changed]
        removed = [f"{name} (removed)" for name in removed]
    return changed + removed


def diff_counts(i, root=ROOT):
    """(added, removed): the '+' and '-' lines of stage_diff(i), not counting its headers."""
    body = split_lines(stage_diff(i, root))[2:]  # skip the '---' and '+++' header lines
    added = sum(1 for line in body if line.startswith("+"))
    removed = sum(1 for line in body if line.startswith("-"))
    return added, removed


# ------------------------------------------------------------------ running a stage script
OUTPUT_FIELDS = {  # a measured figure: the pattern of its line in a stage script's output
    "num_params": r"^num params: (\d+)$",
    "train_loss_last50": r"^train loss \(last 50 steps\): ([\d.]+)$",
    "val_loss": r"^val loss: ([\d.]+) ",
    "ms_per_step": r"^step +\d+ / \d+ \| loss [\d.]+ \| ([\d.]+) ms/step \| ETA \d+ s$",
}


def parse_output(out, keys=tuple(OUTPUT_FIELDS)):
    """{key: figure} from what a stage script printed: the last line matching each key's pattern
    (for ms_per_step, the last progress line: the mean over the whole run)."""
    figures = {}
    for key in keys:
        found = re.findall(OUTPUT_FIELDS[key], out, re.MULTILINE)
        if not found:
            raise CourseError(f"no line matching {OUTPUT_FIELDS[key]!r} in the output")
        figures[key] = int(found[-1]) if key == "num_params" else float(found[-1])
    return figures


def sha256(data):
    """Hex SHA-256 of a file (a Path), of bytes, or of text as UTF-8."""
    if isinstance(data, Path):
        data = data.read_bytes()
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def exec_as_stage(code, i, ns, argv=(), root=ROOT):
    """Exec `code` into the namespace `ns` as stage i's script run with settings `argv`
    (--name=value); returns what it printed. A script skips its command line where ipykernel is
    loaded (a notebook): it is hidden meanwhile, so the settings apply in a process that
    imported it for something else (a test run)."""
    path = str(stage_path(i, root))
    saved_argv, sys.argv = sys.argv, [path, *map(str, argv)]
    ipykernel = sys.modules.pop("ipykernel", None)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, path, "exec"), ns)
    finally:
        sys.argv = saved_argv
        if ipykernel is not None:
            sys.modules["ipykernel"] = ipykernel
    return out.getvalue()


def load_stage(i, argv=(), upto="training", root=ROOT):
    """Namespace of stage i after running every section before section `upto` (None: the whole
    script) with settings `argv`; ns['_stdout'] holds what it printed."""
    sections = read_sections(i, root)
    names = [name for name, _ in sections]
    if upto is not None and upto not in names:
        raise CourseError(f"{STAGE_FILES[i]} has no '# === {upto} ===' section")
    code = "".join(body for _, body in sections[: names.index(upto) if upto else None])
    ns = {"__file__": str(stage_path(i, root)), "__name__": "stage"}
    ns["_stdout"] = exec_as_stage(code, i, ns, argv, root)
    return ns


def section_code(i, name, root=ROOT):
    """Section `name` of stage i compiled, padded with blank lines so that tracebacks and
    profiles show the script's own line numbers."""
    text, before = "", 0
    for section, body in read_sections(i, root):
        if section == name:
            text = body
            break
        before += body.count("\n")
    if not text:
        raise CourseError(f"{STAGE_FILES[i]} has no '# === {name} ===' section")
    return compile("\n" * before + text, str(stage_path(i, root)), "exec")


def machine_info():
    """What a measurement ran on: platform, Python, CPU count and model."""
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "cpu": cpu}


def machine_line(machine):
    """machine_info() as one line of prose."""
    cpu = f", {machine['cpu']}" if machine.get("cpu") else ""
    return f"{machine['platform']}, Python {machine['python']}, {machine['cpu_count']} CPUs{cpu}"


def run_child(command, cwd):
    """Run command; return (returncode, stdout text, stderr text, wall s, usage), usage being
    the child's own resource usage (ru_maxrss: peak RSS in kB; ru_utime, ru_stime: CPU s)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err)
        # wait4 gives this child's own usage; RUSAGE_CHILDREN would mix in earlier children
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        return (os.waitstatus_to_exitcode(status), out.read().decode("utf-8", "replace"),
                err.read().decode("utf-8", "replace"), wall, usage)


# ------------------------------------------------------------------ measured figures in prose
FIGURES_FILE = ROOT / "benchmarks" / "experiments" / "figures.json"   # experiments.py --render
FIGURE_KEY = re.compile(r"\{\{exp:([^{}]+)\}\}")


def read_figures():
    """figures.json: {'budgets': {name: steps}, 'figures': {key: text}, 'not_measured': [key]}."""
    import json
    return json.loads(FIGURES_FILE.read_text(encoding="utf-8"))


def fill_figures(text, where, missing=None):
    """`text` with each {{exp:KEY}} replaced by the figure tools/experiments.py wrote for KEY; a
    budget's name (SHORT, LONG, ABLATION_LONG) in KEY stands for its steps, and alone gives them
    ('3,000'). A key planned but not measured yet gives '(not measured yet: KEY)' and joins the
    set `missing`; any other key is a CourseError naming `where`."""
    data = read_figures()
    budgets, figures = data["budgets"], data["figures"]

    def replace(match):
        key = match.group(1).strip()
        if key in budgets:
            return f"{budgets[key]:,}"
        key = ".".join(str(budgets.get(part, part)) for part in key.split("."))
        if key in figures:
            return figures[key]
        if key in data["not_measured"]:
            if missing is not None:
                missing.add(key)
            return f"(not measured yet: {key})"
        raise CourseError(f"{where}: unknown figure {{{{exp:{key}}}}} (tools/experiments.py has "
                          f"no such key; known: {', '.join(sorted(figures)) or 'none yet'})")
    return FIGURE_KEY.sub(replace, text)


def script_code(text):
    """What a script computes: its syntax tree without docstrings (nor comments), so that editing
    those leaves its measurements fresh."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) \
                and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def diff_name(i):
    """'train2_to_train3': the name (without .diff or .html) of the diff from stage i-1 to i."""
    return f"train{i - 1}_to_train{i}"


# ------------------------------------------------------------------ templates and notebooks
TEMPLATES = ROOT / "tools" / "templates"
TEMPLATE_PART = re.compile(r"^(?:# ---|<!--) part: ([\w-]+) (?:---|-->)$", re.M)
TEMPLATE_SLOT = re.compile(r"^[ \t]*\{\{(\w+)\}\}\n|\{\{(\w+)\}\}", re.M)


def template(name, part, **values):
    """Part `part` of tools/templates/`name` (or of the file at the path `name` with a '/'): its
    lines after '# --- part: PART ---' or '<!-- part: PART -->' up to the next such line, each
    {{key}} replaced by values[key] (a line that is only {{key}} by the lines of its value)."""
    name = f"tools/templates/{name}" if "/" not in name else name
    pieces = TEMPLATE_PART.split((ROOT / name).read_text(encoding="utf-8"))
    parts = dict(zip(pieces[1::2], pieces[2::2]))
    if part not in parts:
        raise CourseError(f"{name} has no part {part!r}")

    def fill(match):
        key = match.group(1) or match.group(2)
        if key not in values:
            raise CourseError(f"{name} ({part}): no value for {{{{{key}}}}}")
        value = str(values[key])
        return (value + "\n" if value else "") if match.group(1) else value
    text = parts[part].removeprefix("\n").rstrip("\n")
    return TEMPLATE_SLOT.sub(fill, text + "\n")[:-1]


def parse_prose(text, where):
    """(title, teaches, [(kind, text, line)]) of a prose file of notebooks/prose/: '# title', one
    'Teaches: ...' line, then in order each ```python block ('code') and the Markdown between
    ('md', stripped), cut before each ## or ### heading and at a line `<!-- after -->` (dropped);
    line: the number of an item's first line."""
    lines = split_lines(text)
    if not lines or not lines[0].startswith("# "):
        raise CourseError(f"{where}: the first line must be the # title")
    items, md, code, teaches = [], [], None, []   # md: (number, line) pairs

    def flush():
        if chunk := "".join(line for _, line in md).strip():
            items.append(("md", chunk, md[0][0]))
        md.clear()
    for number, line in enumerate(lines[1:], 2):
        fence = re.match(r"```(\w*)\s*$", line)
        if code is not None and fence:
            items.append(("code", "".join(code[1:]).rstrip("\n"), code[0]))
            code = None
        elif code is not None:
            code.append(line)
        elif fence and fence.group(1) != "python":
            raise CourseError(f"{where}:{number}: a code block must be ```python (a cell)")
        elif line.startswith("# "):
            raise CourseError(f"{where}:{number}: only one # title, at the top")
        elif line.startswith("Teaches: ") and not items:
            teaches.append(line[len("Teaches: "):].strip())
        else:
            after = line.strip() == "<!-- after -->"
            if fence or after or re.match(r"#{2,3} ", line):
                flush()
            if fence:
                code = [number]   # the line it starts on, then its lines
            elif not after:
                md.append((number, line))
    if code is not None:
        raise CourseError(f"{where}: a ```python block is not closed")
    flush()
    if len(teaches) != 1:
        raise CourseError(f'{where}: needs one "Teaches: ..." line under the title')
    return lines[0][2:].strip(), teaches[0], items


def code_sources(cells):
    """The code cells' sources with PLACEHOLDER for the repository's name: what a notebook's
    outputs depend on (tools/repo.py --set rewrites the name in place)."""
    return [cell.source.replace(f"GITHUB_REPO = '{GITHUB_REPO}'", f"GITHUB_REPO = '{PLACEHOLDER}'")
            for cell in cells if cell.cell_type == "code"]


def new_notebook(cells, microgpt):
    """A notebook of nbformat cells with the course's metadata and the tool's record `microgpt`."""
    import nbformat
    return nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}, "microgpt": microgpt})


def read_notebook(path):
    """The notebook at `path`, or None if it is missing or not a notebook."""
    import nbformat
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError):
        return None


def notebook_text(nb):
    """The text a notebook is written as (nbformat's, and a final newline)."""
    import nbformat
    return nbformat.writes(nb) + "\n"


def outputs_kept(nb, old):
    """nb with the outputs of the notebook `old` if they came from nb's sources (the same source
    hash and the same code cells: only prose may differ), else None."""
    import copy
    digest = nb.metadata["microgpt"]["source_sha256"]
    code = lambda book: [cell for cell in book.cells if cell.cell_type == "code"]
    sources = lambda book: [(cell.id, cell.source) for cell in code(book)]
    if old is None or old.metadata.get("microgpt", {}).get("outputs_from_sha256") != digest \
            or sources(old) != sources(nb):
        return None
    kept = copy.deepcopy(nb)
    kept.metadata["microgpt"]["outputs_from_sha256"] = digest
    for cell, ran in zip(code(kept), code(old)):
        cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
    return kept


def notebook_problems(nb, path, name):
    """One line `name`: ... for each way the notebook at `path` differs from nb, a fresh build."""
    old = read_notebook(path)
    if old is None:
        return [f"{name}: missing"]
    problems = []
    bare = lambda book: [{key: value for key, value in cell.items()
                          if key not in ("outputs", "execution_count")} for cell in book.cells]
    if bare(old) != bare(nb):
        why = " (a quoted figure changed)" if outputs_kept(nb, old) else ""
        problems.append(f"{name}: cells differ from a fresh build{why}")
    meta = nb.metadata["microgpt"]
    if old.metadata.get("microgpt", {}) != {**meta, "outputs_from_sha256": meta["source_sha256"]}:
        problems.append(f"{name}: outputs are missing or come from older sources")
    elif Path(path).read_text(encoding="utf-8") != notebook_text(old):
        problems.append(f"{name}: not written by its tool (formatting differs)")
    return problems


def outputs_for(nb, path, execute=False):
    """(nb with outputs, a note): those kept from the notebook at `path`, or run if `execute`."""
    kept = outputs_kept(nb, read_notebook(path))
    if kept is not None:
        return kept, "outputs kept"
    if execute:
        ran, seconds = run_for_outputs(nb, Path(path).parent)
        return ran, f"executed in {seconds:.0f} s"
    return nb, "built without outputs (run with --execute to add them)"


def execute_notebook(nb, cwd, overrides=None, settings=None, timeout=1800, env=os.environ):
    """A copy of nb run top to bottom in a fresh python3 kernel in `cwd` with the environment
    `env`. overrides {name: value text} rewrite the line `name = ...` of the first cell that
    starts with `settings`, as a learner would edit the settings."""
    import copy
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    cells = [cell for cell in nb.cells if settings and cell.source.startswith(settings)]
    for name, value in (overrides or {}).items():
        pattern = re.compile(rf"^{re.escape(name)} = .*$", re.M)
        if not cells or not pattern.search(cells[0].source):
            raise CourseError(f'the settings cell has no "{name} = ..." line')
        cells[0].source = pattern.sub(f"{name} = {value}", cells[0].source, count=1)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            coalesce_streams=True, resources={"metadata": {"path": str(cwd)}})
    client.execute(env=dict(env))   # record_timing=False: no timestamps in the outputs
    return nb


def run_for_outputs(nb, cwd):
    """(nb run in `cwd` with inline figures, seconds): the outputs to commit, marked as coming
    from nb's source hash."""
    import copy
    start = time.perf_counter()
    env = {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}   # not Agg
    ran = execute_notebook(nb, cwd, env=env)
    ran.metadata = copy.deepcopy(nb.metadata)
    ran.metadata["microgpt"]["outputs_from_sha256"] = nb.metadata["microgpt"]["source_sha256"]
    return ran, time.perf_counter() - start
