"""The Python side of the page's worker (Pyodide): runs a stage script as `python script.py
--name=value ...` would, runs notebook cells in one namespace, and gives the notebooks what a
browser lacks: subprocess.run of a stage script runs it in this process, and where matplotlib
cannot be loaded a stand-in prints one line instead of the plot. Standard library only.
"""
import ast
import base64
import contextlib
import io
import os
import random
import runpy
import subprocess
import sys
import traceback
import types

import page   # the worker's JS: page.write(stream, text), page.image(png_base64)

NO_PLOT = ("[plot not drawn: matplotlib cannot be loaded in this page; the notebook on GitHub "
           "shows the full run's plots]")


class PageStream(io.TextIOBase):
    """sys.stdout or sys.stderr: every write goes to the page at once (live output)."""

    def __init__(self, name):
        self.name = name

    def writable(self):
        return True

    def write(self, text):
        page.write(self.name, text)
        return len(text)


def exit_status(error):
    """The exit status of a SystemExit, printing its message as the interpreter does."""
    if error.code is None or isinstance(error.code, int):
        return error.code or 0
    print(error.code, file=sys.stderr)
    return 1


def run_script(path, argv):
    """Run the script at `path` with sys.argv [path, *argv], as a program; its exit status.
    As a separate process would, it leaves the notebook's random numbers as they were."""
    saved, state = sys.argv, random.getstate()
    sys.argv = [path, *argv]
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as error:
        return exit_status(error)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved
        random.setstate(state)
    return 0


def run_in_process(args, *, capture_output=False, stdout=None, stderr=None, text=None,
                   check=False, **_):
    """subprocess.run for `[sys.executable, 'script.py', '--name=value', ...]`: the browser
    starts no processes, so the script runs here (run_script), its output captured."""
    argv = [os.fspath(arg) for arg in args]
    if argv and (argv[0] == sys.executable or os.path.basename(argv[0]).startswith("python")):
        argv = argv[1:]
    if not argv or not argv[0].endswith(".py"):
        raise OSError(f"{args!r}: in the browser, subprocess.run runs only Python scripts")
    out, err = io.StringIO(), io.StringIO()
    capture_out = capture_output or stdout == subprocess.PIPE
    capture_err = capture_output or stderr == subprocess.PIPE
    with contextlib.redirect_stdout(out if capture_out else sys.stdout), \
            contextlib.redirect_stderr(err if capture_err else sys.stderr):
        status = run_script(argv[0], argv[1:])
    convert = (lambda s: s) if text or _.get("encoding") else (lambda s: s.encode())
    result = subprocess.CompletedProcess(args, status,
                                         convert(out.getvalue()) if capture_out else None,
                                         convert(err.getvalue()) if capture_err else None)
    if check:
        result.check_returncode()
    return result


class Stub:
    """Any matplotlib object, where matplotlib cannot be loaded: accepts every call."""

    def __getattr__(self, name):
        return Stub()

    def __call__(self, *args, **kwargs):
        return Stub()

    def __getitem__(self, key):
        return Stub()


def stub_subplots(nrows=1, ncols=1, *, squeeze=True, **_):
    axes = [[Stub() for _ in range(ncols)] for _ in range(nrows)]
    if squeeze:   # as matplotlib: one Axes, a flat row or column, or the grid
        flat = [ax for row in axes for ax in row]
        axes = flat[0] if len(flat) == 1 else flat if 1 in (nrows, ncols) else axes
    return Stub(), axes


def stub_module(name, **names):
    module = types.ModuleType(name)
    module.__path__ = []
    module.__getattr__ = lambda attr: Stub()
    module.__dict__.update(names)
    sys.modules[name] = module
    return module


def show_png():
    """plt.show() of the real matplotlib: each open figure goes to the page as a PNG."""
    import matplotlib.pyplot as plt
    for number in plt.get_fignums():
        buffer = io.BytesIO()
        plt.figure(number).savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        page.image(base64.b64encode(buffer.getvalue()).decode())
    plt.close("all")


def use_matplotlib(real):
    """Called before the first cell that plots: the real matplotlib (Agg, figures sent as
    PNG) when its wheels loaded and it imports, else the stand-in whose show() prints one
    line. Returns whether it is the real one."""
    if real:
        os.environ["MPLBACKEND"] = "Agg"
        try:
            import matplotlib.pyplot as plt
        except Exception:   # any failure (a wheel missing, say): the stand-in
            pass
        else:
            plt.show = show_png
            return True
    pyplot = stub_module("matplotlib.pyplot", subplots=stub_subplots,
                         show=lambda *a, **k: print(NO_PLOT))
    stub_module("matplotlib", pyplot=pyplot)
    stub_module("matplotlib.colors")
    return False


NOTEBOOK = {"__name__": "__main__"}   # the namespace every notebook cell runs in


def run_cell(code):
    """Run a notebook cell (a last expression is printed as Jupyter would); 0, or 1 on error."""
    try:
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), NOTEBOOK)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), NOTEBOOK)
            if value is not None:
                print(repr(value))
    except SystemExit as error:
        return exit_status(error)
    except BaseException as error:
        traceback.print_exception(type(error), error, error.__traceback__.tb_next)
        return 1
    return 0


def setup(folder="/course"):
    """Called once by the worker: print to the page, run scripts in-process, work in `folder`
    (where the worker wrote the scripts and data)."""
    sys.stdout, sys.stderr = PageStream("out"), PageStream("err")
    sys.argv = [""]
    subprocess.run = run_in_process
    os.chdir(folder)
