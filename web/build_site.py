"""Build the in-browser course: a static site where Pyodide (CPython compiled to WebAssembly)
runs the six real stage scripts and their notebooks' cells in a Web Worker.

    cd web && npm ci && cd ..     # Pyodide and marked, pinned and hash-checked (package-lock)
    python web/build_site.py      # the site, in web/_site/ (git-ignored); --out DIR: elsewhere
    python -m http.server -d web/_site

Per stage, stageN.html: the script's settings as a form, Run and Stop, live output, the diff
from the previous stage and the companion notebook's prose and cells; index.html is the course
map and runs stage 0. Matplotlib's Pyodide wheels are optional: `--fetch-wheels` downloads them
(the deploy workflow does) into web/wheels/, and the build copies them in after checking each
file's sha256 against Pyodide's own lock file; without them the plot cells print one line.
"""
import argparse
import ast
import hashlib
import html
import json
import posixpath
import re
import shutil
import sys
import urllib.request
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
sys.path.insert(0, str(ROOT / "tools"))
import stages  # noqa: E402  (tools/stages.py: the stage list, sections, links)

PYODIDE = WEB / "node_modules" / "pyodide"
PYODIDE_FILES = ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json"]
MARKED = WEB / "node_modules" / "marked" / "lib" / "marked.esm.js"
WHEELS = WEB / "wheels"   # matplotlib and its dependencies, fetched at deploy time
WHEELS_LIST = WEB / "wheels.txt"   # "sha256  url" per wheel, from pyodide-lock.json
CDN = "https://cdn.jsdelivr.net/pyodide/v{version}/full/"
SETTING = re.compile(r"^(\w+) = (.+?)(?:\s+#\s*(.*))?$")


def settings_of(i):
    """[(name, default text or '', comment)] of stage i's settings block, in order. A default
    that is not a literal (data_path) is '': the field then means 'as the script says'."""
    body = dict(stages.read_sections(i))["settings"]
    found = []
    for line in body.split("\n\n")[0].splitlines()[1:]:
        match = SETTING.match(line)
        if match:
            name, value, comment = match.groups()
            try:
                value = str(ast.literal_eval(value))
            except (ValueError, SyntaxError):
                comment, value = f"default: {value}", ""
            found.append((name, value, comment or ""))
    return found


def notebook_path(i):
    return ROOT / "notebooks" / stages.STAGE_FILES[i].replace(".py", ".ipynb")


def notebook_cells(i):
    """The companion notebook as [{type, source, outputs}], outputs being the committed run's
    text and PNG images (shown until the learner runs the cell)."""
    cells = []
    for cell in json.loads(notebook_path(i).read_text(encoding="utf-8"))["cells"]:
        outputs = []
        for out in cell.get("outputs", []):
            if out["output_type"] == "stream":
                outputs.append({"text": "".join(out["text"])})
            elif "image/png" in out.get("data", {}):
                outputs.append({"png": out["data"]["image/png"].strip()})
            elif "text/plain" in out.get("data", {}):
                outputs.append({"text": "".join(out["data"]["text/plain"]) + "\n"})
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            source = site_links(source)
        cells.append({"type": cell["cell_type"], "source": source, "outputs": outputs})
    return cells


def site_links(markdown):
    """A notebook's Markdown for this site: a link relative to notebooks/ goes to GitHub (the
    site does not hold those files), and a link to another stage's notebook in Colab (not its
    Open-in-Colab badge) goes to that stage's page."""
    markdown = re.sub(r"\]\((?![a-z]+:|#)([^)\s]+)\)", lambda m: "](" + stages.github_url(
        posixpath.normpath("notebooks/" + m.group(1))) + ")", markdown)
    for k in range(len(stages.STAGE_FILES)):
        colab = stages.colab_url(f"notebooks/{notebook_path(k).name}")
        markdown = re.sub(r"(?<!\.svg\))\]\(" + re.escape(colab) + r"\)", f"](stage{k}.html)",
                          markdown)
    return markdown.replace(stages.site_url(), "")   # this site's own pages, relative


def stdout_only(path):
    """A committed notebook with only its text outputs: what the notebooks' stage_printout()
    reads, without the images."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if o["output_type"] == "stream"]
    return json.dumps(nb)


def course_files():
    """Repository files the worker writes into /course: the scripts, and every file a
    notebook's setup cell NEEDS (data, tools/attention_probe.py)."""
    files = set(stages.STAGE_FILES) | {"data/names.txt"}
    for i in range(len(stages.STAGE_FILES)):
        for cell in notebook_cells(i):
            match = re.search(r"^NEEDED = (\[.*\])$", cell["source"], re.M)
            if match:
                files |= set(ast.literal_eval(match.group(1)))
    return sorted(files)


def lock_wheels():
    """{file name: sha256} of matplotlib and everything it depends on, from pyodide-lock.json."""
    packages = json.loads((PYODIDE / "pyodide-lock.json").read_text())["packages"]
    todo, seen = ["matplotlib"], {}
    while todo:
        package = packages[todo.pop()]
        if package["file_name"] not in seen:
            seen[package["file_name"]] = package["sha256"]
            todo += package["depends"]
    return dict(sorted(seen.items()))


def wheel_list():
    """wheels.txt's text: one "sha256  url" line per wheel (the deploy fetches these)."""
    version = json.loads((PYODIDE / "package.json").read_text())["version"]
    return "".join(f"{sha}  {CDN.format(version=version)}{name}\n"
                   for name, sha in lock_wheels().items())


def fetch_wheels():
    """Download every wheel of wheels.txt into web/wheels/, each checked against its sha256."""
    if WHEELS_LIST.read_text() != wheel_list():
        raise stages.CourseError("web/wheels.txt is not Pyodide's lock file's: "
                                 "python web/build_site.py --wheel-list")
    WHEELS.mkdir(exist_ok=True)
    for line in WHEELS_LIST.read_text().splitlines():
        sha, url = line.split()
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise stages.CourseError(f"{url}: sha256 is not {sha}")
        (WHEELS / url.rsplit("/", 1)[1]).write_bytes(data)
        print(f"fetched {url}")


def copy_wheels(out):
    """Copy the matplotlib wheels into the site when all are there with their locked sha256;
    returns whether they were (the pages then load the real matplotlib)."""
    wanted = lock_wheels()
    if not all((WHEELS / name).is_file() for name in wanted):
        return False
    for name, sha in wanted.items():
        data = (WHEELS / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise stages.CourseError(f"web/wheels/{name}: sha256 is not {sha} (pyodide-lock.json)")
        (out / "pyodide" / name).write_bytes(data)
    return True


def summary(i):
    """The first line of stage i's docstring, without its 'Stage i: '."""
    text = re.sub(r"^Stage \d+: ", "", stages.summary(i))
    return text[:1].upper() + text[1:]


def runner(i):
    """The settings form, Run and Stop, and the output of stage i's script."""
    script = stages.STAGE_FILES[i]
    fields = ""
    for name, value, comment in settings_of(i):
        value, size = html.escape(value), max(5, len(value) + 2) if value else 16
        hint = "" if value else ' placeholder="as in the script"'
        fields += (f'<label title="{html.escape(comment)}">{name} <input name="{name}" '
                   f'value="{value}" data-default="{value}" size="{size}"{hint}></label>\n')
    return f"""<section class="runner" data-script="{script}">
<h2>Run <code>{script}</code></h2>
<form class="settings">{fields}</form>
<p><button class="run" type="button">Run</button> <button class="stop" type="button">Stop</button>
<code class="command">$ python {script}</code> <span class="status">loading Python...</span></p>
<pre class="output"></pre>
</section>"""


def page(title, body, extra=""):
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{html.escape(title)}</title><link rel="stylesheet" href="style.css">
<script type="module" src="app.js"></script>{extra}</head>
<body>
{body}
<footer>Generated by web/build_site.py from <a href="{stages.github_url("")}">the course
repository</a>. Python runs in this page (Pyodide), on your machine: nothing is installed
and nothing is sent.</footer>
</body>
</html>
"""


def stage_page(i):
    n = len(stages.STAGE_FILES)
    nav = ['<a href="index.html">course map</a>']
    if i > 0:
        nav.append(f'<a href="stage{i - 1}.html">&larr; stage {i - 1}</a>')
    if i < n - 1:
        nav.append(f'<a href="stage{i + 1}.html">stage {i + 1} &rarr;</a>')
    diff = "<p>Stage 0 is where the course starts: it has no previous stage.</p>"
    if i > 0:
        name = f"diffs/{stages.diff_name(i)}.html"
        diff = (f'<p><a href="{name}">Open the diff on its own page</a>; it shows only what stage '
                f'{i} adds.</p>\n<iframe src="{name}" loading="lazy" title="diff"></iframe>')
    notebook = notebook_path(i).name
    cells = json.dumps(notebook_cells(i)).replace("</", "<\\/")
    body = f"""<nav>{" | ".join(nav)}</nav>
<h1>Stage {i}: {html.escape(stages.CONCEPTS[i])}</h1>
<p>{html.escape(summary(i))}</p>
{runner(i)}
<section><h2>The diff{f" from stage {i - 1}" if i else ""}</h2>
{diff}</section>
<section class="notebook"><h2>The notebook: <code>{notebook}</code></h2>
<p>Its text and code; each code cell runs here, in order, in one Python session (edit a cell,
then run it). Until you run a cell, its output is the committed full run's.
<button class="run-all" type="button">Run all cells</button>
<button class="stop-notebook" type="button">Stop</button> <b class="notebook-status"></b></p>
<div class="cells"></div>
<script type="application/json" class="cells-data">{cells}</script>
</section>"""
    return page(f"Stage {i}: {stages.CONCEPTS[i]}", body)


def index_page():
    rows = "".join(
        f'<tr><td>{i}</td><td><a href="stage{i}.html">{html.escape(stages.CONCEPTS[i])}</a></td>'
        f"<td>{html.escape(summary(i))}</td></tr>\n" for i in range(len(stages.STAGE_FILES)))
    body = f"""<h1>microgpt course: a GPT from scratch, in your browser</h1>
<p>Six short Python files grow a letter-pair counter into a complete GPT, one concept at a time.
Each runs here as it is: press Run below for stage 0, then open the stages in order.</p>
<table><tr><th>stage</th><th>concept</th><th>the script</th></tr>
{rows}</table>
{runner(0)}"""
    return page("microgpt course in your browser", body)


def build(out):
    if not all((PYODIDE / name).is_file() for name in PYODIDE_FILES) or not MARKED.is_file():
        raise stages.CourseError(f"{WEB / 'node_modules'} lacks Pyodide or marked: "
                                 "run npm ci in web/")
    if out.exists():
        shutil.rmtree(out)
    (out / "pyodide").mkdir(parents=True)
    for name in PYODIDE_FILES:
        shutil.copy2(PYODIDE / name, out / "pyodide" / name)
    shutil.copy2(MARKED, out / "marked.esm.js")
    for name in ["app.js", "worker.mjs", "course.py", "style.css"]:
        shutil.copy2(WEB / "src" / name, out / name)
    files = course_files()
    for name in files:
        (out / "course" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, out / "course" / name)
    for i in range(len(stages.STAGE_FILES)):   # for the notebooks' stage_printout()
        name = f"notebooks/{notebook_path(i).name}"
        (out / "course" / name).parent.mkdir(exist_ok=True)
        (out / "course" / name).write_text(stdout_only(ROOT / name), encoding="utf-8")
        files.append(name)
    matplotlib = copy_wheels(out)
    manifest = {"files": files, "matplotlib": matplotlib}
    (out / "course" / "files.json").write_text(json.dumps(manifest, indent=1))
    shutil.copytree(ROOT / "diffs", out / "diffs", ignore=shutil.ignore_patterns("*.md"))
    (out / "index.html").write_text(index_page(), encoding="utf-8")
    for i in range(len(stages.STAGE_FILES)):
        (out / f"stage{i}.html").write_text(stage_page(i), encoding="utf-8")
    (out / ".nojekyll").write_text("")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"built {out} ({size / 1e6:.1f} MB, matplotlib {'in' if matplotlib else 'not in'} "
          f"the site); serve it: python -m http.server -d {out}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEB / "_site", help="default: web/_site")
    parser.add_argument("--wheel-list", action="store_true",
                        help="write web/wheels.txt from node_modules/pyodide/pyodide-lock.json")
    parser.add_argument("--fetch-wheels", action="store_true",
                        help="download web/wheels.txt's wheels into web/wheels/ first")
    args = parser.parse_args()
    if args.wheel_list:
        WHEELS_LIST.write_text(wheel_list())
    if args.fetch_wheels:
        fetch_wheels()
    build(args.out.resolve())


if __name__ == "__main__":
    stages.run(main)
