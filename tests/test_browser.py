"""The in-browser course (web/): the built site, served on 127.0.0.1 with every other request
blocked, runs each of the six real stage scripts in headless Chromium (Debian's, driven by
Playwright) and prints what CPython prints for the same settings, timing columns masked; Stop
ends a run; stage 0's notebook runs top to bottom, printing its committed outputs, a plot cell
one line; and a page shows its output (screenshot). Under CPython alone, the worker's Python
(web/src/course.py): its subprocess.run runs a stage in-process as a process would, and plots go
to the page as PNGs with matplotlib, as one line without.

The browser tests are skipped with the reason where Chromium, Playwright or web/node_modules
(`npm ci` in web/) is missing; under CI=true (.ci/run installs them) that is a failure.
Run: python -m pytest -q tests/test_browser.py
"""
import concurrent.futures
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import browser   # web/browser.py (pyproject's pytest pythonpath has tools/ and web/)
import build_site as build   # web/build_site.py
import stages

ROOT = Path(__file__).resolve().parent.parent

SMALL = {"num_steps": 20, "num_samples": 3}   # every stage, in the page and in CPython
# stage 1 prints the largest relative error of its hand-derived gradients against finite
# differences: a difference of two nearly equal losses, so its 1e-9 digits follow the maths
# library's last-bit rounding of exp and log, which differs between WebAssembly's libm and the
# system's. That one number is masked; both sides must still be below 1e-6.
GRADIENT_CHECK = re.compile(r"(max relative error )(\S+)$", re.M)
EXTERNAL_OK = {stages.COLAB_BADGE}   # the notebooks' Colab badge images: blocked, not needed


def missing():
    """Why the browser test cannot run here ('' if it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if not os.access(browser.CHROMIUM, os.X_OK):
        return f"no Chromium at {browser.CHROMIUM} (apt-get install chromium)"
    if not (build.PYODIDE / "pyodide.asm.wasm").is_file():
        return "web/node_modules has no Pyodide (run npm ci in web/)"
    return ""


@pytest.fixture(scope="module")
def native(site):
    """CPython's output of every stage at SMALL, computed beside the browser's runs."""
    def run(i):
        argv = [f"--{name}={value}" for name, value in SMALL.items()]
        command = [sys.executable, str(stages.stage_path(i)), *argv]
        return subprocess.run(command, capture_output=True, text=True, timeout=300).stdout
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        yield [pool.submit(run, i) for i in range(len(stages.STAGE_FILES))]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    problem = missing()
    if problem and os.environ.get("CI") == "true":
        pytest.fail(f"the browser test must run in CI: {problem}")
    if problem:
        pytest.skip(problem)
    out = tmp_path_factory.mktemp("site")
    build.build(out)
    server, base = browser.serve(out)
    yield base
    server.shutdown()


@pytest.fixture(scope="module")
def context(site):
    from playwright.sync_api import sync_playwright
    blocked, errors = [], []
    with sync_playwright() as playwright:
        chromium = browser.launch(playwright)
        context = browser.offline_context(chromium, blocked)
        context.on("weberror", lambda error: errors.append(str(error.error)))
        yield context
        chromium.close()
    assert not errors, errors
    assert set(blocked) <= EXTERNAL_OK, f"the site fetched from outside: {blocked}"


@pytest.fixture(scope="module")
def stage_page(site, context):
    """stage_page(i): stage i's page with its Python ready, opened once for all the tests
    (each opening loads Pyodide anew); stage 0's stays open, another closes at the next."""
    pages = {}

    def open_page(i):
        for k in [k for k in pages if k not in (0, i)]:
            pages.pop(k).close()
        if i not in pages:
            pages[i] = context.new_page()
            pages[i].goto(f"{site}stage{i}.html")
            browser.wait_ready(pages[i])
        return pages[i]
    yield open_page
    for page in pages.values():
        page.close()


def comparable(text):
    return GRADIENT_CHECK.sub(r"\1<masked>", browser.mask(text))


def gradient_error(text):
    found = GRADIENT_CHECK.search(text)
    return float(found.group(2)) if found else 0.0


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("i", range(len(stages.STAGE_FILES)))
def test_stage_prints_what_cpython_prints(i, native, stage_page):
    page = stage_page(i)
    out, status = browser.run_stage(page, SMALL)
    assert status.endswith("exit status 0"), status
    expected = native[i].result()
    assert comparable(out) == comparable(expected)
    assert gradient_error(out) < 1e-6 and gradient_error(expected) < 1e-6
    assert out.count("\n") == expected.count("\n") > 10
    if i == len(stages.STAGE_FILES) - 1:   # Stop: a long run ends at once, Python restarts
        page.locator("input[name=num_steps]").fill("100000")
        page.locator("button.run").click()
        page.wait_for_function("document.querySelector('.output').textContent.includes('vocab')")
        page.locator("button.stop").click()
        assert page.locator(".status").text_content().startswith("stopped: Python was ended")
        browser.wait_ready(page)


@pytest.mark.browser
@pytest.mark.slow
def test_notebook_runs_in_the_page(stage_page):
    """Stage 0's notebook, Run all: each cell prints what its committed run printed (timings
    masked), its plot cells one line each, its "try it" cell runs the script through the
    subprocess.run shim. The page's Python has run the script before (a separate run)."""
    page = stage_page(0)
    page.locator("button.run-all").click()
    page.wait_for_function("document.querySelector('.status').textContent.startsWith('ran all')",
                           timeout=120_000)
    printed = page.locator(".cell.code pre").all_text_contents()
    nb = json.loads(build.notebook_path(0).read_text(encoding="utf-8"))
    cells = [cell for cell in nb["cells"] if cell["cell_type"] == "code"]
    assert len(printed) == len(cells)
    plots = 0
    for cell, text in zip(cells, printed):
        committed = "".join("".join(out.get("text", "")) for out in cell["outputs"])
        if any("image/png" in out.get("data", {}) for out in cell["outputs"]):
            plots += 1
            committed += "[plot not drawn: matplotlib cannot be loaded in this page; " \
                         "the notebook on GitHub shows the full run's plots]\n"
        assert browser.mask(text) == browser.mask(committed), cell["source"][:80]
    assert plots == 2


@pytest.mark.browser
def test_wheel_list_is_pyodides(site):
    """web/wheels.txt, what the deploy fetches, names matplotlib and its dependencies with the
    sha256 of the pinned Pyodide's lock file."""
    assert build.WHEELS_LIST.read_text() == build.wheel_list()
    assert "matplotlib-" in build.WHEELS_LIST.read_text()


@pytest.mark.browser
@pytest.mark.slow
def test_first_page_shows_its_output(site, context):
    """index.html runs stage 0 with one click; a screenshot shows the page with its output."""
    from PIL import Image
    page = context.new_page()
    page.goto(site)
    browser.wait_ready(page)
    start = time.perf_counter()
    out, status = browser.run_stage(page, {})
    assert time.perf_counter() - start < 30
    assert out.startswith("num docs: ") and "sample 20: " in out, out
    assert page.locator(".runner .output").is_visible()
    image = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("L")
    histogram = image.histogram()
    assert max(histogram) < 0.97 * sum(histogram), "the page is (nearly) one colour"
    output = Image.open(io.BytesIO(page.locator(".runner .output").screenshot())).convert("L")
    assert sum(1 for n in output.histogram() if n) > 10, "the output box shows no text"
    page.close()


# ------------------------------------------------- the worker's Python, under CPython (no browser)
@pytest.fixture
def course(monkeypatch):
    """web/src/course.py loaded as the worker loads it, with a stand-in for its JS module `page`
    that records what would go to the page."""
    import importlib.util
    import types
    sent = types.SimpleNamespace(writes=[], images=[])
    page = types.ModuleType("page")
    page.write = lambda stream, text: sent.writes.append((stream, text))
    page.image = sent.images.append
    monkeypatch.setitem(sys.modules, "page", page)
    spec = importlib.util.spec_from_file_location("course", ROOT / "web" / "src" / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.sent = sent
    return module


def test_subprocess_shim_runs_a_stage_as_a_process_would(course):
    """The notebooks' "try it" call, subprocess.run([sys.executable, script, ...],
    capture_output=True, text=True), gives in-process what the real one gives."""
    import random
    for argv in (["--num_steps=20", "--num_samples=3"], ["--num_steps=zero"]):
        command = [sys.executable, str(stages.stage_path(1)), *argv]
        real = subprocess.run(command, capture_output=True, text=True, timeout=120)
        state = random.getstate()
        shim = course.run_in_process(command, capture_output=True, text=True)
        assert random.getstate() == state   # the caller's random numbers go on unchanged
        assert (shim.returncode, shim.stderr) == (real.returncode, real.stderr)
        assert comparable(shim.stdout) == comparable(real.stdout)
    assert real.returncode == 1 and real.stderr.count("\n") == 1   # one error line
    assert isinstance(course.run_in_process(command, capture_output=True).stderr, bytes)


def test_plots_without_matplotlib_print_one_line(course, monkeypatch, capsys):
    """Where the page has no matplotlib, the stand-in takes every call the notebooks' plot cells
    make, and plt.show() prints one line."""
    for name in ("matplotlib", "matplotlib.pyplot", "matplotlib.colors"):
        if name in sys.modules:
            monkeypatch.setitem(sys.modules, name, sys.modules[name])
        else:
            monkeypatch.setitem(sys.modules, name, None)
            monkeypatch.delitem(sys.modules, name)
    course.use_matplotlib(False)
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm
    fig, ax = plt.subplots(figsize=(8, 4.5))
    image = ax.imshow([[1, 2]], norm=LogNorm())
    fig.colorbar(image, ax=ax, label="weight")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    ax2.bar([1], [2])
    fig, axes = plt.subplots(2, 4, squeeze=False)
    axes[1][3].set_title("layer 1, head 3")
    fig.suptitle("heads")
    plt.show()
    assert capsys.readouterr().out == course.NO_PLOT + "\n"


def test_real_matplotlib_sends_each_figure_as_png(course, monkeypatch):
    """Where the page has matplotlib, plt.show() sends each open figure to the page as a PNG."""
    import base64
    import matplotlib
    import matplotlib.pyplot as plt
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setattr(plt, "show", plt.show)
    matplotlib.use("Agg")
    course.use_matplotlib(True)
    for _ in range(2):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([1, 3, 2])
    plt.show()
    assert len(course.sent.images) == 2
    assert all(base64.b64decode(png).startswith(b"\x89PNG") for png in course.sent.images)
    assert plt.get_fignums() == []
