"""What tools/grade.py runs in each sandbox (python -I -S -c <compare.py's text, then this>):
it reads its job (JSON, stdin) and, under the sandbox's limits, the submission (job["fd"]), runs
the handout's code, the exercise's cell and its probe, and prints {"cell": error or null,
"cases": {label: {"value": ...} or {"error": ...}}} on the answer channel."""
# ruff: noqa: F821  (compare.py, run before this text, defines answers and error)
import ast
import json
import os
import re
import resource
import sys

job = json.loads(sys.stdin.read())
# modules the stage code, probes or students may import, loaded before the limits
import argparse, bisect, collections, contextlib, copy, dataclasses, encodings.utf_8_sig  # noqa
import functools, gettext, heapq, itertools, math, operator, random, statistics, string  # noqa
import time, traceback, zlib  # noqa
if job["isolated"] and os.getuid() == 0:   # root's sandbox: become nobody, no capabilities
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
answer_channel = os.fdopen(os.dup(1), "w")
quiet = os.open(os.devnull, os.O_WRONLY)
os.dup2(quiet, 1)
os.dup2(quiet, 2)
resource.setrlimit(resource.RLIMIT_AS, (job["memory_mb"] << 20, job["memory_mb"] << 20))
resource.setrlimit(resource.RLIMIT_CPU, (job["cpu_s"], job["cpu_s"] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))

# a cell marker of a .py export: Jupyter's `# In[ ]:`, jupytext / VS Code / Spyder `# %%`, `#%%`
CELL_MARK = re.compile(r"^#[ \t]*(?:%%|In\[[ 0-9]*\]:|<codecell>)(.*)$", re.M)
MAGIC = re.compile(r"^[%!].*$", re.M)   # an IPython magic or shell line, never Python
MAX_CELLS = 10000   # a handout has about 100 cells


def read_cells():
    """[(source, exercise ids or None)] for the code cells of the submitted .ipynb or .py file,
    read in linear time (a .py export is split at its cell markers)."""
    data = bytearray()
    while chunk := os.pread(job["fd"], 1 << 20, len(data)):
        data += chunk
        if len(data) > job["max_bytes"]:
            raise ValueError(f'larger than {job["max_bytes"] >> 20} MB')
    text = data.decode("utf-8-sig", "replace")   # -sig: an editor's byte-order mark
    if job["kind"] == "py":
        parts = CELL_MARK.split(text, MAX_CELLS)   # text, marker, text, marker, text ...
        if len(parts) > 2 * MAX_CELLS:
            raise ValueError(f"{MAX_CELLS} cells or more")
        return [(parts[0], None)] + [(src, re.findall(r"exercise\s+(\d+\.\d+)", mark) or None)
                                     for mark, src in zip(parts[1::2], parts[2::2])]
    cells = []
    nb_cells = json.loads(text).get("cells", [])
    if len(nb_cells) > MAX_CELLS:
        raise ValueError(f"more than {MAX_CELLS} cells")
    for cell in nb_cells:
        if cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        if not isinstance(src, str):
            raise ValueError("a code cell's source is not text")
        meta = cell.get("metadata", {}).get("microgpt", {})
        tags = meta.get("exercises") if meta.get("source") == "exercise" else None
        cells.append((src, [str(t) for t in tags] if isinstance(tags, list) else None))
    return cells


def parsed(src):
    """(source, module); IPython magics and shell lines become `pass` if the cell does not parse
    as it is (so line numbers stay the student's own), and a cell magic as a .py export writes it,
    get_ipython().run_cell_magic('time', '', 'the cell'), becomes the cell."""
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        without = MAGIC.sub("pass", src)
        try:
            return without, ast.parse(without)
        except SyntaxError:
            raise e from None
    for node in tree.body:
        call = getattr(node, "value", None)
        if getattr(getattr(call, "func", None), "attr", "") == "run_cell_magic" and \
                len(call.args) == 3 and isinstance(getattr(call.args[2], "value", None), str):
            return parsed(call.args[2].value)
    return src, tree


class NoIPython:
    """What get_ipython() gives a .py export's line magics and shell lines here: nothing to do."""
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def keep_definitions(src, tree):
    """The source with every top-level statement but imports, functions and classes blanked."""
    kept = {k for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom,
                                                         ast.FunctionDef, ast.ClassDef))
            for k in range(node.lineno - 1 - len(getattr(node, "decorator_list", [])),
                           node.end_lineno)}
    return "\n".join(line if k in kept else "" for k, line in enumerate(src.split("\n")))


def student_code(cells):
    """The code to run: the exercise's own cell as it is, else the definitions of the last other
    cell that defines all the exercise's names. Raises LookupError with the reason for 0 points."""
    ex = job["exercise"]
    order = [(src, True) for src, tags in cells if tags and ex in tags] + \
        [(src, False) for src, tags in reversed(cells) if not (tags and ex in tags)]
    syntax = None
    for src, tagged in order:
        if not all(re.search(rf"\b(def|class)\s+{n}\b", src) for n in job["defines"]):
            continue   # cannot define them all: not parsed
        try:
            src, tree = parsed(src)
        except (SyntaxError, ValueError) as e:
            syntax = syntax or f'syntax error in your cell, line {getattr(e, "lineno", "?")}: ' \
                               f'{getattr(e, "msg", e)}'
            continue
        names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if set(job["defines"]) <= names:
            return src if tagged else keep_definitions(src, tree)
    raise LookupError(syntax or f'missing: no code cell defines {", ".join(job["defines"])}')


def answer():
    try:
        cells = read_cells()
    except BaseException as e:   # bad JSON, too big or too deep to parse, ...
        return {"cell": f"cannot read the submission: {type(e).__name__}: {e}"[:300], "cases": {}}
    try:
        code = student_code(cells)
    except LookupError as e:
        return {"cell": str(e), "cases": {}}
    except BaseException as e:
        return {"cell": f"cannot parse your cell: {type(e).__name__}", "cases": {}}
    del cells
    sys.stdout = sys.stderr = open(os.devnull, "w")   # what the code prints is not kept
    sys.argv = ["stage.py"]
    ns = {"__name__": "__main__", "__file__": os.path.join(os.getcwd(), "stage.py"),
          "get_ipython": NoIPython}
    for label, src in job["context"]:
        for stmt in ast.parse(src).body:   # a statement needing an unfinished exercise fails
            with contextlib.suppress(BaseException):
                exec(compile(ast.Module([stmt], []), f"<handout: {label}>", "exec"), ns)
    try:
        exec(compile(code, "submission.py", "exec"), ns)
    except BaseException as e:
        line = getattr(e, "lineno", None) or (traceback.extract_tb(e.__traceback__)[-1].lineno
                                              if e.__traceback__ else "?")
        return {"cell": error(e, line), "cases": {}}
    probes = {"__name__": "probes"}
    exec(job["probes"], probes)
    try:
        cases = probes["probe_" + job["name"]](ns)
    except BaseException as e:
        return {"cell": error(e), "cases": {}}
    return {"cell": None, "cases": answers(cases)}


answer_channel.write(json.dumps(answer()))
answer_channel.flush()
os._exit(0)
