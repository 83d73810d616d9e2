"""Grade a folder of submitted exercise notebooks (.ipynb) and .py exports for one stage.

  python tools/grade.py STAGE FOLDER [--out DIR] [--workers 2] [--timeout 10] [--memory-mb 1024]
  python tools/grade.py --demo-class 40 [--stage 2] [--out DIR]   make a class and grade it

Writes DIR/grades.csv (one row per student: points per exercise, total), DIR/feedback.csv
(student, exercise, points, the reason) and DIR/summary.txt (per exercise: mean and number of
full marks; per student: total), and prints the summary. DIR defaults to FOLDER/grades.

For each student and exercise, the exercise's cell is found (by its cell metadata, else the last
code cell that defines the exercise's functions; a .py export is split at `# %%` or `# In[ ]:`
lines); an exercise cell runs as it is, from any other cell only the imports, functions and
classes are kept. They run in a fresh subprocess
after the stub handout's code (tiny settings, no training), then the visible and the hidden
checks (tools/exercise_checks/) run; each check passed is worth its share of the points. The
subprocess gets a new empty temporary folder holding only data/names.txt and that code, a
scrubbed environment, limits on CPU time, memory, file size and processes, and a wall-clock
timeout; run as root, it is also chroot-ed into that folder and runs as an unprivileged user,
so it cannot see the grader, its hidden checks or other submissions. An exception, an endless
loop, a syntax error or a missing cell scores 0 for that exercise, with the reason.
"""
import argparse
import ast
import csv
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import exercises  # noqa: E402
import stages  # noqa: E402

ROOT = stages.ROOT
NOBODY = 65534
SANDBOX_UID_BASE = 61000   # root mode: each subprocess runs as its own unused uid
KEEP_STATEMENTS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef,
                   ast.ClassDef)

# The program each subprocess runs (python -I -c RUNNER), reading its job as JSON on stdin.
RUNNER = r'''
import ast, io, json, os, resource, sys
job = json.loads(sys.stdin.read())
# modules the stage code, checks or students may import, loaded before a chroot hides them
import argparse, bisect, collections, contextlib, copy, dataclasses, encodings.utf_8_sig
import functools, gettext, heapq, itertools, math, operator, random, re, statistics, string
import time, traceback, zlib
out = os.fdopen(os.dup(1), 'w')
nonce = job['nonce']
if job['chroot']:
    os.chroot(job['dir'])
    os.chdir('/')
    os.setgroups([])
    os.setgid(job['uid'])
    os.setuid(job['uid'])
    base = '/'
else:
    os.chdir(job['dir'])
    base = job['dir']
mem = job['memory_mb'] * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_CPU, (job['cpu_s'], job['cpu_s'] + 1))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
del job['dir']


class Tail(io.TextIOBase):   # keeps only the end of what the code prints
    def __init__(self):
        self.text = ''

    def write(self, s):
        self.text = (self.text + str(s))[-2000:]
        return len(s)


sys.stdout = sys.stderr = Tail()
sys.argv = ['stage.py']
ns = {'__name__': '__main__', '__file__': os.path.join(base, 'stage.py')}
for label, src in job['context']:
    for stmt in ast.parse(src).body:
        try:   # statements that need an unfinished exercise fail; the rest still defines
            exec(compile(ast.Module([stmt], []), f'<handout: {label}>', 'exec'), ns)
        except BaseException:
            pass
results = []
try:
    exec(compile(job['student'], os.path.join(base, 'submission.py'), 'exec'), ns)
except BaseException as e:
    line = getattr(e, 'lineno', None) or (traceback.extract_tb(e.__traceback__)[-1].lineno
                                          if e.__traceback__ else '?')
    results = [[name, False, f'your cell raised {type(e).__name__} at line {line}: {e}'[:300]]
               for name, _ in job['checks']]
if not results:
    cns = {'__name__': 'checks'}
    exec(job['helpers'], cns)
    for name, src in job['checks']:
        exec(src, cns)
        try:
            cns[name](ns)
            results.append([name, True, 'passed'])
        except cns['CheckFailed'] as e:
            results.append([name, False, str(e)[:300]])
        except NotImplementedError as e:
            results.append([name, False, f'not implemented ({e})'[:300]])
        except BaseException as e:
            results.append([name, False, f'raised {type(e).__name__}: {e}'[:300]])
out.write(nonce + json.dumps(results) + '\n')
out.flush()
os._exit(0)
'''


class GradeError(Exception):
    """Bad arguments or an unreadable folder; one line for the user."""


# --- reading submissions ----------------------------------------------------------------------

CELL_MARK = re.compile(r'^# (%%|In\[[ 0-9]*\]:)(.*)$')
EXERCISE_TAG = re.compile(r'exercise\s+(\d+\.\d+)')


def read_submission(path):
    """[(source, exercise ids or None)] for the code cells of a .ipynb or .py file."""
    text = Path(path).read_text(encoding='utf-8', errors='replace')
    if str(path).endswith('.ipynb'):
        nb = json.loads(text)
        cells = []
        for cell in nb.get('cells', []):
            if cell.get('cell_type') != 'code':
                continue
            src = cell.get('source', '')
            src = ''.join(src) if isinstance(src, list) else str(src)
            meta = cell.get('metadata', {}).get('microgpt', {})
            tags = meta.get('exercises') if meta.get('source') == 'exercise' else None
            cells.append((src, tags))
        return cells
    cells = [['', None]]
    for line in text.splitlines(keepends=True):
        match = CELL_MARK.match(line.rstrip('\n'))
        if match:
            tags = EXERCISE_TAG.findall(match.group(2))
            cells.append(['', tags or None])
        else:
            cells[-1][0] += line
    return [(src, tags) for src, tags in cells if src.strip()]


def defined_names(tree):
    return {node.name for node in tree.body if isinstance(node, KEEP_STATEMENTS[2:])}


def keep_definitions(src, tree):
    """The source with every top-level statement except imports, functions and classes blanked
    (line numbers stay the same, so messages point at the student's own lines)."""
    lines = src.split('\n')
    keep = [False] * len(lines)
    for node in tree.body:
        if isinstance(node, KEEP_STATEMENTS):
            first = node.lineno - 1 - len(getattr(node, 'decorator_list', []))
            for k in range(first, node.end_lineno):
                keep[k] = True
    return '\n'.join(line if keep[k] else '' for k, line in enumerate(lines))


def student_code(cells, ex):
    """(code to run, None) or (None, reason for 0 points)."""
    tagged = [src for src, tags in cells if tags and ex.id in tags]
    candidates = tagged + [src for src, tags in cells if not tags or ex.id not in tags]
    syntax = None
    best = None
    for src in candidates:
        try:
            tree = ast.parse(src)
        except SyntaxError as e:
            mentions = all(re.search(rf'\b(def|class)\s+{re.escape(n)}\b', src)
                           for n in ex.defines)
            if mentions and syntax is None:
                syntax = f'syntax error in your cell, line {e.lineno}: {e.msg}'
            continue
        if set(ex.defines) <= defined_names(tree):
            if src in tagged:   # the exercise cell itself runs as it is
                return src, None
            best = keep_definitions(src, tree)   # the last untagged cell that defines them all
    if best is not None:
        return best, None
    if syntax:
        return None, syntax
    return None, f'missing: no code cell defines {", ".join(ex.defines)}'


# --- running ----------------------------------------------------------------------------------

def check_jobs(ex):
    """[(check function name, source)]: the visible check, then the hidden one."""
    return [(f'check_{ex.name}', exercises.check_source(ex.name, 'visible')),
            (f'hidden_{ex.name}', exercises.check_source(ex.name, 'hidden'))]


def checks_helpers():
    hidden = (exercises.CHECKS_DIR / 'hidden.py').read_text()
    lines = stages.split_lines(hidden)
    text = exercises.helpers_source()
    for node in ast.parse(hidden).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith('hidden_'):
            text += '\n\n' + ''.join(lines[node.lineno - 1:node.end_lineno])
    return text


def run_one(job, settings, slot):
    """Run one exercise's checks in a sandboxed subprocess: [(check, passed, message)]."""
    folder = tempfile.mkdtemp(prefix='grade-')
    try:
        os.makedirs(os.path.join(folder, 'data'))
        shutil.copy(ROOT / 'data' / 'names.txt', os.path.join(folder, 'data', 'names.txt'))
        with open(os.path.join(folder, 'submission.py'), 'w', encoding='utf-8') as f:
            f.write(job['student'])
        as_root = os.geteuid() == 0
        uid = SANDBOX_UID_BASE + slot if as_root else os.getuid()
        if as_root:
            for dirpath, _, files in os.walk(folder):
                os.chown(dirpath, uid, uid)
                for name in files:
                    os.chown(os.path.join(dirpath, name), uid, uid)
        nonce = secrets.token_hex(16)
        payload = dict(job, dir=folder, chroot=as_root, uid=uid, nonce=nonce,
                       memory_mb=settings['memory_mb'], cpu_s=settings['timeout'])
        env = {'PATH': '/usr/bin:/bin', 'LANG': 'C.UTF-8', 'PYTHONHASHSEED': '0'}
        proc = subprocess.Popen([sys.executable, '-I', '-S', '-c', RUNNER], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                cwd=folder, start_new_session=True)
        try:
            stdout, _ = proc.communicate(json.dumps(payload).encode(), timeout=settings['timeout'])
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return None, f'timed out after {settings["timeout"]} s (an endless loop?)'
        for line in reversed(stdout.decode('utf-8', 'replace').splitlines()):
            if line.startswith(nonce):
                return json.loads(line[len(nonce):]), None
        if proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            # the CPU limit equals the wall-clock timeout: whichever fires first, it is the
            # same verdict for the student, so it gets the same words
            return None, f'timed out after {settings["timeout"]} s (an endless loop?)'
        return None, f'the code stopped the grader\'s process (exit code {proc.returncode}; ' \
                     'out of memory, or it called exit)'
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def grade_submission(path, stage, settings, slot, context, helpers):
    """{exercise id: (points, reason)} for one file."""
    exs = exercises.stage_exercises(stage)
    try:
        cells = read_submission(path)
    except (OSError, ValueError, UnicodeError) as e:
        return {ex.id: (0.0, f'cannot read the submission: {e}') for ex in exs}
    result = {}
    for ex in exs:
        code, reason = student_code(cells, ex)
        if code is None:
            result[ex.id] = (0.0, reason)
            continue
        checks = check_jobs(ex)
        job = {'context': context, 'student': code, 'checks': checks, 'helpers': helpers}
        outcome, reason = run_one(job, settings, slot)
        if outcome is None:
            result[ex.id] = (0.0, reason)
            continue
        passed = sum(1 for _, ok, _ in outcome if ok)
        points = round(ex.points * passed / len(checks), 2)
        failures = [f'{"hidden check" if name.startswith("hidden_") else "check"}: {msg}'
                    for name, ok, msg in outcome if not ok]
        result[ex.id] = (points, '; '.join(failures) or 'all checks passed')
    return result


def grade_folder(stage, folder, out_dir, workers=2, timeout=5, memory_mb=1024, quiet=False):
    """Grade every .ipynb and .py file in folder; write the CSVs and summary; return rows."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradeError(f'not a folder: {folder}')
    files = sorted(p for p in folder.iterdir() if p.suffix in ('.ipynb', '.py') and p.is_file())
    if not files:
        raise GradeError(f'no .ipynb or .py files in {folder}')
    if os.geteuid() != 0 and not quiet:
        print('note: not running as root, so student code runs with your own file permissions '
              '(no chroot); grade inside a container as root for full isolation', file=sys.stderr)
    context = exercises.grader_context(stage)
    helpers = checks_helpers()
    settings = {'timeout': timeout, 'memory_mb': memory_mb}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(grade_submission, path, stage, settings, k % 1000, context,
                               helpers) for k, path in enumerate(files)]
        results = [f.result() for f in futures]
    elapsed = time.perf_counter() - start
    rows = [(path, res) for path, res in zip(files, results)]
    write_reports(stage, rows, Path(out_dir), elapsed, quiet)
    return rows, elapsed


def write_reports(stage, rows, out_dir, elapsed, quiet):
    exs = exercises.stage_exercises(stage)
    out_dir.mkdir(parents=True, exist_ok=True)
    max_total = sum(ex.points for ex in exs)
    with open(out_dir / 'grades.csv', 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(['student', 'file'] + [ex.id for ex in exs] + ['total', 'max'])
        for path, res in rows:
            total = round(sum(res[ex.id][0] for ex in exs), 2)
            w.writerow([path.stem, path.name] + [res[ex.id][0] for ex in exs] + [total, max_total])
    with open(out_dir / 'feedback.csv', 'w', newline='', encoding='utf-8') as f:
        w = csv.writer(f)
        w.writerow(['student', 'exercise', 'points', 'max', 'result'])
        for path, res in rows:
            for ex in exs:
                w.writerow([path.stem, ex.id, res[ex.id][0], ex.points, res[ex.id][1]])
    lines = [f'stage {stage} ({stages.concept(stage)}): {len(rows)} submissions graded in '
             f'{elapsed:.1f} s', '',
             f'{"exercise":<10}{"title":<48}{"mean":>8}{"max":>6}{"full marks":>12}']
    for ex in exs:
        pts = [res[ex.id][0] for _, res in rows]
        full = sum(1 for p in pts if p >= ex.points)
        lines.append(f'{ex.id:<10}{ex.title[:46]:<48}{sum(pts) / len(pts):>8.2f}'
                     f'{ex.points:>6}{full:>8} / {len(pts)}')
    totals = [sum(res[ex.id][0] for ex in exs) for _, res in rows]
    lines += ['', f'total: mean {sum(totals) / len(totals):.2f} / {max_total}, '
              f'{sum(1 for t in totals if t >= max_total)} with full marks, '
              f'{sum(1 for t in totals if t == 0)} with 0', '',
              f'{"student":<32}' + ''.join(f'{ex.id:>7}' for ex in exs) + f'{"total":>8}']
    for (path, res), total in zip(rows, totals):
        lines.append(f'{path.stem[:31]:<32}' + ''.join(f'{res[ex.id][0]:>7g}' for ex in exs)
                     + f'{total:>8g}')
    text = '\n'.join(lines) + '\n'
    (out_dir / 'summary.txt').write_text(text, encoding='utf-8')
    if not quiet:
        print(text, end='')
        print(f'wrote {out_dir / "grades.csv"}, feedback.csv, summary.txt')


# --- a generated class ------------------------------------------------------------------------

def make_submission(stage, kind, ex_id=None, variant=0):
    """Notebook text of one generated submission: kind is 'correct', 'untouched', 'wrong' (the
    mutant WRONG[ex_id][variant]), 'loop', 'raise', 'syntax', 'no_checks', 'reads_answers' (the
    last five break exercise ex_id, or all checks), or 'py' (a correct .py export: returns
    the .py text)."""
    from exercise_checks import mutants
    nb = exercises.build_handout(stage, 'stub' if kind == 'untouched' else 'solution')
    cells = nb['cells']
    target = None
    for cell in cells:
        meta = cell['metadata'].get('microgpt', {})
        if meta.get('source') == 'exercise' and ex_id in meta.get('exercises', []):
            target = cell
    if kind == 'wrong':
        pairs = mutants.WRONG[ex_id]
        if ex_id not in mutants.TOGETHER:
            pairs = [pairs[variant]]
        for old, new in pairs:
            if target['source'].count(old) != 1:
                raise GradeError(f'mutant of {ex_id} does not match: {old!r}')
            target['source'] = target['source'].replace(old, new)
    elif kind == 'loop':
        target['source'] = re.sub(r'(\n    """.*?"""\n)', r'\1    while True:\n        pass\n',
                                  target['source'], count=1, flags=re.S)
    elif kind == 'raise':
        target['source'] = 'raise RuntimeError("broken at import")\n' + target['source']
    elif kind == 'syntax':
        target['source'] = target['source'].replace('):\n', ')\n', 1)
    elif kind == 'no_checks':
        nb['cells'] = [c for c in cells if c['metadata'].get('microgpt', {}).get('source')
                       != 'check']
    elif kind == 'reads_answers':
        spy = ('import os as _os\n'
               'def _peek():\n'
               '    """What a cheat would try: the grader\'s answers, other submissions."""\n'
               '    found = []\n'
               '    paths = [' + repr(str(exercises.CHECKS_DIR / 'hidden.py')) + ', '
               + repr(str(ROOT / 'tools' / 'exercises.py')) + ',\n'
               '             "../../tools/exercise_checks/hidden.py"]\n'
               '    try:   # the grader\'s command line names the class folder\n'
               '        with open(f"/proc/{_os.getppid()}/cmdline") as f:\n'
               '            args = f.read().split("\\0")\n'
               '        found += [a for a in args if "hidden" in a]\n'
               '        for a in args:\n'
               '            if _os.path.isdir(a):\n'
               '                found += _os.listdir(a)\n'
               '    except OSError:\n'
               '        pass\n'
               '    for path in paths:\n'
               '        try:\n'
               '            with open(path) as f:\n'
               '                found.append(f.read()[:20])\n'
               '        except OSError:\n'
               '            pass\n'
               '    if found:\n'
               '        raise RuntimeError("read the answers: " + repr(found[:3]))\n\n\n')
        target['source'] = spy + target['source'].replace('"""\n', '"""\n    _peek()\n', 1)
    if kind == 'py':
        out = ''
        for cell in cells:
            meta = cell['metadata'].get('microgpt', {})
            if cell['cell_type'] != 'code':
                continue
            tag = f' exercise {" ".join(meta["exercises"])}' if meta.get('exercises') else ''
            out += f'# %%{tag}\n{cell["source"]}\n'
        return out
    return exercises.dumps(nb)


def demo_class(n, stage, out_dir):
    """Write n generated submissions for a stage into out_dir/submissions: about half right,
    a quarter with one plausible wrong answer, the rest broken in the ways a class breaks."""
    from exercise_checks import mutants
    folder = Path(out_dir) / 'submissions'
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    ids = [ex.id for ex in exercises.stage_exercises(stage)]
    broken = ['untouched', 'loop', 'raise', 'syntax', 'no_checks', 'reads_answers', 'py']
    for k in range(n):
        ex_id = ids[k % len(ids)]
        if k % 2 == 0:
            kind = 'correct'
        elif k % 4 == 1:
            kind = 'wrong'
        else:
            kind = broken[(k // 4) % len(broken)]
        variant = (k // 4) % len(mutants.WRONG[ex_id]) if kind == 'wrong' else 0
        text = make_submission(stage, kind, ex_id, variant)
        suffix = '.py' if kind == 'py' else '.ipynb'
        name = f'student{k + 1:02d}_{kind}' + (f'_{ex_id}' if kind not in (
            'correct', 'untouched', 'no_checks', 'py') else '')
        (folder / (name + suffix)).write_text(text, encoding='utf-8')
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('stage', nargs='?', type=int, help='stage 0-5 of the handout')
    parser.add_argument('folder', nargs='?', help='folder of .ipynb / .py submissions')
    parser.add_argument('--out', help='where to write the reports (default: FOLDER/grades)')
    parser.add_argument('--workers', type=int, default=2, help='parallel subprocesses (2)')
    parser.add_argument('--timeout', type=int, default=5, help='seconds per exercise (5)')
    parser.add_argument('--memory-mb', type=int, default=1024, help='memory per exercise (1024)')
    parser.add_argument('--demo-class', type=int, metavar='N',
                        help='generate N submissions for --stage and grade them')
    parser.add_argument('--stage', dest='demo_stage', type=int, default=2,
                        help='the stage of --demo-class (default: 2)')
    args = parser.parse_args(argv)
    try:
        if args.workers < 1 or args.timeout < 1 or args.memory_mb < 64:
            raise GradeError('--workers and --timeout must be at least 1, --memory-mb at least 64')
        if args.demo_class is not None:
            stage = args.demo_stage
            if not 0 <= stage < len(stages.STAGE_FILES) or args.demo_class < 1:
                raise GradeError('--demo-class needs N >= 1 and --stage 0-5')
            out = Path(args.out or tempfile.mkdtemp(prefix='demo-class-'))
            folder = demo_class(args.demo_class, stage, out)
            grade_folder(stage, folder, out / 'grades', args.workers, args.timeout,
                         args.memory_mb)
            return 0
        if args.stage is None or args.folder is None:
            raise GradeError('give a STAGE and a FOLDER (or --demo-class N); see --help')
        if not 0 <= args.stage < len(stages.STAGE_FILES):
            raise GradeError(f'no stage {args.stage}; stages are 0-5')
        out = args.out or os.path.join(args.folder, 'grades')
        grade_folder(args.stage, args.folder, out, args.workers, args.timeout, args.memory_mb)
        return 0
    except (GradeError, exercises.ExerciseError, OSError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
