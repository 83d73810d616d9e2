"""Grade a folder of submitted handouts (.ipynb, or .py exports) of one stage.

  python tools/grade.py STAGE FOLDER [--out DIR] [--workers 2] [--timeout 5] [--memory-mb 768]
  add --no-isolation to run student code without a sandbox (only where bubblewrap cannot run)

Writes: DIR/grades.csv (per student: points per exercise, total), DIR/feedback.csv (per student
and exercise: points and why; each file not graded and why) and DIR/summary.txt (printed too),
in FOLDER/grades by default (grades-2, ... if a submission took the name).
Reads: the exercises and handouts as tools/exercises.py builds them, tools/exercise_checks/
(runner.py: what a sandbox runs; compare.py: how answers compare) and the probes,
notebooks/exercises/checks/probes.py (with helpers.py's patched()).

This process never reads a submission nor runs student code: per student and exercise, a fresh
bubblewrap sandbox (notebooks/exercises/README.md) runs the exercise's cell and the probe and
prints plain data, which this process compares with the reference's answer.
"""
import argparse
import contextlib
import csv
import io
import json
import os
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import exercises
import stages
from exercise_checks.compare import failures
from stages import CourseError

NAMES = stages.ROOT / "data" / "names.txt"   # the one data file a sandbox gets
MAX_ANSWER = 1 << 20   # bytes a sandbox may print; more is an oversized answer
MAX_SUBMISSION = 20 << 20   # bytes of a submitted file; more is not read
SANDBOX_PYTHON = sys.executable   # the Python that runs inside the sandbox
SANDBOX_DIR = Path(__file__).resolve().parent / "exercise_checks"   # runner.py, compare.py
LAUNCHER = []   # a command that starts bwrap as another user (tests use setpriv)
RUNNER = "".join((SANDBOX_DIR / name).read_text(encoding="utf-8")
                 for name in ("compare.py", "runner.py"))
PROBES = "\n\n".join((exercises.CHECKS_DIR / name).read_text(encoding="utf-8")
                     for name in ("helpers.py", "probes.py"))   # what a sandbox probes with
REPORTS = ("grades.csv", "feedback.csv", "summary.txt")


def sandbox_command(isolated, names_fd):
    """The command that runs RUNNER, in bubblewrap (names_fd becomes data/names.txt) or not."""
    python = [SANDBOX_PYTHON, "-I", "-S", "-c", RUNNER]
    if not isolated:
        return python
    # root: no user namespace, so RUNNER becomes uid 65534 outside it too (a fork limit holds)
    users = [] if os.geteuid() == 0 and not LAUNCHER else \
        ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    cmd = LAUNCHER + ["bwrap", *users, "--unshare-ipc", "--unshare-pid", "--unshare-net",
                      "--unshare-uts", "--unshare-cgroup-try", "--die-with-parent",
                      "--new-session", "--ro-bind", "/usr", "/usr"]
    for path in ["/bin", "/lib", "/lib32", "/lib64", "/sbin"]:
        if os.path.islink(path):
            cmd += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            cmd += ["--ro-bind", path, path]
    scratch = ["--size", str(16 << 20), "--perms", "01777", "--tmpfs"]   # writable, vanishes
    cmd += ["--proc", "/proc", "--dev", "/dev", *scratch, "/tmp", *scratch, "/job"]
    prefix = os.path.dirname(os.path.dirname(os.path.realpath(SANDBOX_PYTHON)))
    pythons = {prefix, sys.base_prefix, sys.prefix} if SANDBOX_PYTHON == sys.executable \
        else {prefix}   # a virtual environment and the Python it was made from
    binds = sorted(p for p in pythons if p != "/usr" and not p.startswith("/usr/"))
    parents = sorted({str(q) for p in binds for q in Path(p).parents} - {"/"})
    for path in parents:   # made here, not copied from the host, so uid 65534 can enter them
        if not any(path.startswith(b + "/") for b in binds):
            cmd += ["--perms", "0755", "--dir", path]
    cmd += [arg for path in binds for arg in ["--ro-bind", path, path]]
    cmd += ["--remount-ro", "/", "--remount-ro", "/dev"]   # only /tmp and /job are writable
    return cmd + ["--ro-bind-data", str(names_fd), "/job/data/names.txt", "--chdir", "/job",
                  "--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONHASHSEED", "0",
                  "--"] + python


def isolation_problem():
    """None if bubblewrap can make a sandbox here, else why not (one line)."""
    if not shutil.which("bwrap"):
        return "bubblewrap (bwrap) is not installed (apt-get install bubblewrap)"
    with open(NAMES, "rb") as names:
        cmd = sandbox_command(True, names.fileno())[:-1] + ["pass"]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=60, pass_fds=(names.fileno(),))
        except subprocess.TimeoutExpired:
            return "bubblewrap did not start a Python within 60 s"
    if proc.returncode:
        why = (proc.stderr.decode("utf-8", "replace").strip().splitlines() or ["?"])[-1]
        return f"bubblewrap cannot make a sandbox here ({why})"
    return None


def read_bounded(fd, limit, deadline):
    """(bytes, None) read up to end of file, or (None, 'oversized' / 'timeout')."""
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, "timeout"
        if not select.select([fd], [], [], left)[0]:
            continue
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return bytes(data), None
        data += chunk
        if len(data) > limit:
            return None, "oversized"


def run_job(job, settings, fd):
    """(answer, None) or (None, why it scores 0): one job run on the file open as fd, sandboxed."""
    payload = json.dumps(dict(job, memory_mb=settings["memory_mb"], cpu_s=settings["timeout"],
                              isolated=settings["isolated"], fd=fd, max_bytes=MAX_SUBMISSION))
    folder = None if settings["isolated"] else tempfile.mkdtemp(prefix="grade-")
    names = os.open(NAMES, os.O_RDONLY)
    with tempfile.TemporaryFile() as job_file:   # the job, in a file: no write waits on it
        job_file.write(payload.encode())
        job_file.flush()   # the sandbox reads it through a read-only descriptor of its own
        stdin = os.open(f"/proc/self/fd/{job_file.fileno()}", os.O_RDONLY)
    try:
        if folder:   # the working folder of a process that is not isolated
            os.makedirs(os.path.join(folder, "data"))
            shutil.copy(NAMES, os.path.join(folder, "data", "names.txt"))
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(sandbox_command(settings["isolated"], names),
                                stdin=stdin, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, env=env, cwd=folder,
                                start_new_session=True, pass_fds=(names, fd))
        # the CPU limit is the timeout (SIGXCPU reads as timed out); the wall clock gets twice
        # that, so a classmate's busy sandbox on a shared core never pushes an honest one past it
        raw, problem = read_bounded(proc.stdout.fileno(), MAX_ANSWER,
                                    time.monotonic() + 2 * settings["timeout"])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.stdout.close()
        returncode = proc.wait()
    finally:
        os.close(names)
        os.close(stdin)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    if problem == "timeout" or returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return None, f'timed out after {settings["timeout"]} s (an endless loop?)'
    return parsed_answer(raw, problem, returncode)


def parsed_answer(raw, problem, returncode):
    """(answer, None) from what a sandbox printed, or (None, why it is no answer)."""
    if problem == "oversized":
        return None, f"oversized answer: more than {MAX_ANSWER} bytes of output"
    if not raw:
        return None, "no answer: the code stopped its process (exit code " \
                     f"{returncode}; out of memory, or it called exit)"
    try:
        answer = json.loads(raw.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError) as e:
        return None, f"malformed answer (not JSON: {str(e)[:80]})"
    if not (isinstance(answer, dict) and isinstance(answer.get("cases"), dict)
            and isinstance(answer.get("cell"), (str, type(None)))):
        return None, 'malformed answer (not {"cell": ..., "cases": {...}})'
    return answer, None


def score(ex, reference, answer):
    """(points, reason): the exercise's points times the share of the reference's cases that
    the untrusted answer matches (never more than the exercise's points)."""
    if answer["cell"]:
        return 0.0, answer["cell"][:300]
    wrong = failures(reference["cases"], answer["cases"])
    passed = len(reference["cases"]) - len(wrong)
    points = min(float(ex.points), round(ex.points * passed / len(reference["cases"]), 2))
    problems = {problem for _, problem in wrong}
    if passed == 0 and len(problems) == 1:   # the same error everywhere: say it once
        return points, problems.pop()
    hint = " (right values, wrong gradients: does a .data or a new Value(...) cut the graph?)" \
        if wrong and all("gradient" in label for label, _ in wrong) else ""
    return points, "; ".join(f"{label}: {problem}" for label, problem in wrong)[:900] + hint \
        or "all checks passed"


def jobs(stage):
    """{exercise id: what its sandbox runs besides the submission}."""
    return {ex.id: {"context": exercises.grader_context(stage, ex.id), "probes": PROBES,
                    "name": ex.name, "exercise": ex.id, "defines": ex.defines, "kind": "ipynb"}
            for ex in exercises.stage_exercises(stage)}


def reference_answers(stage, jobs, settings):
    """{exercise id: answer} of the reference solution (the stage script) to every probe."""
    answers = {}
    with tempfile.TemporaryFile() as solution:
        solution.write(exercises.dumps(exercises.build_handout(stage, "solution")).encode())
        solution.flush()
        for ex_id, job in jobs.items():
            answer, reason = run_job(job, settings, solution.fileno())
            errors = [] if answer is None else [f'{label}: {case.get("error")}' for label, case
                                                 in answer["cases"].items() if "value" not in case]
            if answer is None or answer["cell"] or not answer["cases"] or errors:
                raise CourseError(f"the reference solution of exercise {ex_id} fails its probe: "
                                  f'{reason or answer["cell"] or "; ".join(errors) or "no cases"}')
            answers[ex_id] = answer
    return answers


def grade_submission(path, jobs, references, settings):
    """{exercise id: (points, reason)} for one file, which each sandbox gets as a descriptor
    (opened without following a link). Any failure here scores the whole submission 0."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        return dict.fromkeys(jobs, (0.0, f"cannot read the submission: {e.strerror}"))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SUBMISSION:
            why = "not a regular file" if not stat.S_ISREG(info.st_mode) else \
                f"larger than {MAX_SUBMISSION >> 20} MB"
            return dict.fromkeys(jobs, (0.0, f"cannot read the submission: {why}"))
        result = {}
        for ex_id, job in jobs.items():
            answer, reason = run_job(dict(job, kind=Path(path).suffix.lower()[1:]), settings, fd)
            result[ex_id] = (0.0, reason) if answer is None else \
                score(exercises.BY_ID[ex_id], references[ex_id], answer)
        return result
    except Exception as e:
        reason = f"the grader could not grade this submission: {type(e).__name__}: {e}"[:300]
        return dict.fromkeys(jobs, (0.0, reason))
    finally:
        os.close(fd)


def shown(name):
    """A file name as a report shows it: bytes that are not UTF-8 as \\xNN, printable()."""
    return printable(os.fsencode(name).decode("utf-8", "backslashreplace"))


def printable(text):
    """Text with every control, format or lone surrogate character escaped (\\n, \\x1b, ...): a
    newline or an escape sequence in a name or a reason must not forge a line of a report."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in str(text))


def survey(folder, out_dir):
    """(files to grade: one regular .ipynb or .py file per student, a notebook first, then the
    newest; [(name, why not)] for the folder's other entries). Links are not followed."""
    chosen, skipped = {}, []
    for entry in os.scandir(folder):   # in any order: both lists are sorted
        if os.path.abspath(entry.path) == os.path.abspath(out_dir):
            continue   # the reports of an earlier run
        suffix = os.path.splitext(entry.name)[1].lower()
        if entry.is_symlink():
            skipped.append((entry.name, "a symbolic link (links are not followed)"))
        elif not entry.is_file(follow_symlinks=False):
            skipped.append((entry.name, "not a regular file"))
        elif suffix not in (".ipynb", ".py"):   # in any case: Bob.IPYNB is a notebook too
            skipped.append((entry.name, "not a .ipynb or .py file"))
        else:
            student = os.path.splitext(entry.name)[0].casefold()
            rank = (suffix == ".ipynb", entry.stat(follow_symlinks=False).st_mtime)
            chosen.setdefault(student, []).append((rank, entry.name))
    files = []
    for found in chosen.values():
        found.sort(reverse=True)
        files.append(Path(folder) / found[0][1])
        skipped += [(name, f"the same student as {shown(found[0][1])}, which is graded")
                    for _, name in found[1:]]
    return sorted(files, key=lambda p: os.fsencode(p.name)), sorted(skipped)


def output_folder(folder):
    """FOLDER/grades, or grades-2, grades-3, ... when a submission took that name: the reports
    never go into a link, a file, or a folder holding anything but earlier reports."""
    for k in range(1, 100):
        path = Path(folder) / ("grades" if k == 1 else f"grades-{k}")
        if not os.path.lexists(path) or (path.is_dir() and not path.is_symlink() and all(
                e.name in REPORTS and e.is_file(follow_symlinks=False)
                for e in os.scandir(path))):
            return path
    raise CourseError(f"no free name for the reports in {folder}; give --out DIR")


def grade_folder(stage, folder, out_dir=None, workers=2, timeout=5, memory_mb=768, quiet=False,
                 isolated=True):
    """Grade the folder and write the reports: ([(path, {exercise id: (points, reason)})], s)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CourseError(f"not a folder: {folder}")
    out_dir = Path(out_dir) if out_dir else output_folder(folder)
    files, skipped = survey(folder, out_dir)
    if not files:
        raise CourseError(f"no .ipynb or .py files in {folder}")
    if isolated and (problem := isolation_problem()):
        raise CourseError(f"no sandbox: {problem}; --no-isolation runs student code with your "
                          "own permissions")
    if not isolated and not quiet:
        print("note: --no-isolation: student code runs with your own permissions and can read "
              "and change your files", file=sys.stderr)
    todo = jobs(stage)
    settings = {"timeout": timeout, "memory_mb": memory_mb, "isolated": isolated}
    start = time.perf_counter()
    references = reference_answers(stage, todo, settings)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(zip(files, pool.map(
            lambda path: grade_submission(path, todo, references, settings), files)))
    elapsed = time.perf_counter() - start
    write_reports(stage, rows, skipped, out_dir, elapsed, quiet)
    return rows, elapsed


def csv_text(rows):
    """CSV of rows; a text cell that a spreadsheet would take for a formula gets a leading '."""
    out = io.StringIO()
    csv.writer(out).writerows([("'" if c[:1] in "=+-@" else "") + printable(c)
                               if isinstance(c, str) else c for c in row] for row in rows)
    return out.getvalue()


def summary_text(stage, exs, names, marks, skipped, elapsed):
    top = sum(ex.points for ex in exs)
    totals = [round(sum(m), 2) for m in marks]
    lines = [f"stage {stage} ({stages.CONCEPTS[stage]}): {len(names)} submissions graded in "
             f"{elapsed:.1f} s", "",
             f'{"exercise":<10}{"title":<48}{"mean":>8}{"max":>6}{"full marks":>12}']
    for k, ex in enumerate(exs):
        pts = [m[k] for m in marks]
        lines.append(f"{ex.id:<10}{ex.title[:46]:<48}{sum(pts) / len(pts):>8.2f}"
                     f"{ex.points:>6}{sum(p >= ex.points for p in pts):>8} / {len(pts)}")
    lines += ["", f"total: mean {sum(totals) / len(totals):.2f} / {top}, "
              f"{sum(t >= top for t in totals)} with full marks, "
              f"{sum(t == 0 for t in totals)} with 0", "",
              f'{"student":<32}' + "".join(f"{ex.id:>7}" for ex in exs) + f'{"total":>8}']
    lines += [f"{name[:31]:<32}" + "".join(f"{p:>7g}" for p in m) + f"{total:>8g}"
              for name, m, total in zip(names, marks, totals)]
    if skipped:
        lines += ["", f"not graded ({len(skipped)}):", *(f"  {shown(n)}: {w}" for n, w in skipped)]
    return "\n".join(lines) + "\n"


def write_reports(stage, rows, skipped, out_dir, elapsed, quiet):
    """The three reports, each a new file renamed over its name: a link or file there is
    replaced, never followed or appended to."""
    exs = exercises.stage_exercises(stage)
    names = [shown(path.stem) for path, _ in rows]
    marks = [[res[ex.id][0] for ex in exs] for _, res in rows]
    top = sum(ex.points for ex in exs)
    reports = {
        "grades.csv": csv_text([["student", "file", *(ex.id for ex in exs), "total", "max"]] + [
            [name, shown(path.name), *m, round(sum(m), 2), top]
            for name, (path, _), m in zip(names, rows, marks)]),
        "feedback.csv": csv_text([["student", "exercise", "points", "max", "result"]] + [
            [name, ex.id, res[ex.id][0], ex.points, res[ex.id][1]]
            for name, (_, res) in zip(names, rows) for ex in exs] + [
            [shown(name), "", 0.0, 0, f"not graded: {why}"] for name, why in skipped]),
        "summary.txt": summary_text(stage, exs, names, marks, skipped, elapsed)}
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in reports.items():
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.")
        with open(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, out_dir / name)
    if not quiet:
        print(reports["summary.txt"] + f"wrote {out_dir}/grades.csv, feedback.csv, summary.txt")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", nargs="?", type=int, help="stage 0-5 of the handout")
    parser.add_argument("folder", nargs="?", help="folder of .ipynb / .py submissions")
    parser.add_argument("--out", help="where to write the reports (default: FOLDER/grades)")
    parser.add_argument("--workers", type=int, default=2, help="parallel subprocesses (2)")
    parser.add_argument("--timeout", type=int, default=5, help="seconds per exercise (5)")
    parser.add_argument("--memory-mb", type=int, default=768, help="memory per exercise (768)")
    parser.add_argument("--no-isolation", action="store_true",
                        help="run student code without a sandbox, with your own permissions")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.timeout < 1 or args.memory_mb < 64:
        raise CourseError("--workers and --timeout must be at least 1, --memory-mb at least 64")
    if args.stage is None or args.folder is None:
        raise CourseError("give a STAGE and a FOLDER; see --help")
    if not 0 <= args.stage < len(stages.STAGE_FILES):
        raise CourseError(f"no stage {args.stage}; stages are 0-5")
    grade_folder(args.stage, args.folder, args.out, args.workers, args.timeout, args.memory_mb,
                 isolated=not args.no_isolation)
    return 0


if __name__ == "__main__":
    stages.run(main)
