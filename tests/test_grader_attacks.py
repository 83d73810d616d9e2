"""Red-team tests for tools/grade.py: one dishonest or sabotaging submission per attack class of
issue 11, each solving nothing, in one stage 3 class with honest classmates. Every attack scores
0 on the exercise it attacks (3.2, attention) while the honest notebook and .py export keep full
marks, and the grader writes grades for the whole class. The class is graded twice: as the user
running the tests (root in CI, where the sandbox drops to uid 65534 itself) and, when that is
root, with bubblewrap started by uid 65534 (setpriv), the path an ordinary user's grading takes.
A last test asks from inside the sandbox what it forbids (fork, other processes, files, network).

Run: python -m pytest -q tests/test_grader_attacks.py
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import require_sandbox
from submissions import make_submission

TOOLS = Path(__file__).resolve().parent.parent / "tools"
import exercises  # noqa: E402
import grade  # noqa: E402
import stages  # noqa: E402

PROBES = exercises.CHECKS_DIR / "probes.py"
HELPERS = exercises.CHECKS_DIR / "helpers.py"   # the probes use its patched()
STUB = "raise NotImplementedError('exercise 3.2: One attention head')\n"

# Each attack replaces the stub line of attention() in the untouched handout (ATTACK_BODY) or
# runs at the top of the exercise cell (ATTACK_CELL). {grader_pid}, {repo}, {folder}, {probes}
# and {helpers} are filled in: what a student could find out (a pid, paths on the instructor's
# machine).
ATTACK_CELL = {
    "main_state": """
import json, sys
main = sys.modules['__main__']
probes = {}
exec(main.job['probes'], probes)   # the runner's job: its probes, its answer channel
labels = [label for label, _, _ in probes['probe_attention'](main.ns)]
forged = {label: {'value': 1.0, 'tolerance': 1e9} for label in labels}
main.answer_channel.write(json.dumps({'cell': None, 'cases': forged}))
main.answer_channel.flush()
main.os._exit(0)
""",
    "prefilled_results": """
import sys
main = sys.modules['__main__']
main.answer = main.results = {'cell': None, 'cases': {'attention over 1 position':
                                                       {'value': [1.0], 'tolerance': 1e9}}}
""",
    "replaced_exec": """
import builtins
builtins.exec = lambda *args, **kwargs: None   # the checks would become no-ops
""",
    "forged_50_passes": """
import json, os, sys
answer = {'cell': None, 'cases': {f'check {k}': {'value': 'passed'} for k in range(50)}}
sys.modules['__main__'].answer_channel.write(json.dumps(answer))
sys.modules['__main__'].answer_channel.flush()
os._exit(0)
""",
    "malformed_result": """
import os, sys
sys.modules['__main__'].answer_channel.write('{"cell": null, "cases": [1, 2')
sys.modules['__main__'].answer_channel.flush()
os._exit(0)
""",
    "rewrites_checks": """
for path in [{probes!r}, {helpers!r}]:
    try:
        with open(path, 'a') as f:
            f.write('\\n# rewritten by a student\\n')
    except OSError:
        pass
""",
    "kills_grader": """
import os, signal
for kill in [lambda: os.kill(os.getppid(), signal.SIGKILL),
             lambda: os.kill({grader_pid}, signal.SIGKILL),
             lambda: os.killpg(os.getpgid({grader_pid}), signal.SIGKILL)]:
    try:
        kill()
    except (OSError, ProcessLookupError):
        pass
""",
    "floods_output": """
import os
chunk = b'x' * (1 << 20)
for fd in [int(name) for name in os.listdir('/proc/self/fd')]:
    for _ in range(300):   # 300 MB to every open file: the answer channel, stdout, stderr
        try:
            os.write(fd, chunk)
        except OSError:
            break
""",
}
ATTACK_BODY = {
    "frames": """
    import sys
    frame = sys._getframe(1)
    while frame is not None:   # disable the caller's assertions, or call its oracle
        for scope in (frame.f_locals, frame.f_globals):
            for name in ('expect', 'expect_close', 'is_close', 'mismatch', 'score'):
                if name in scope:
                    scope[name] = lambda *args, **kwargs: None
            for name in ('reference_attention', 'oracle', 'reference', 'want', 'expected'):
                if callable(scope.get(name)):
                    return scope[name](q, keys, values)
        frame = frame.f_back
    return [0.0] * len(values[0])
""",
    "reads_files": """
    import ast, json
    for path in [{repo!r} + '/train3_single_head.py', {folder!r} + '/alice.ipynb']:
        try:   # the reference script, or a classmate's notebook
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        sources = [text] if path.endswith('.py') else [
            ''.join(c['source']) for c in json.loads(text)['cells']]
        for src in sources:
            if 'def attention(' in src:
                for node in ast.parse(src).body:
                    if isinstance(node, ast.FunctionDef) and node.name == 'attention':
                        exec(ast.unparse(node), globals())
                        return globals()['attention'](q, keys, values)
    return [0.0] * len(values[0])
""",
}
UNPARSABLE = {"not_json.ipynb": "{ this is not json", "a_list.ipynb": "[]",
              "cells_a_number.ipynb": '{"cells": 5}',
              "source_a_dict.ipynb": '{"cells": [{"cell_type": "code", "source": {"a": 1}, '
                                     '"metadata": {"microgpt": {"source": "exercise", '
                                     '"exercises": {"3.2": 1}}}}]}'}


def attack_notebook(name, grader_pid, folder):
    nb = exercises.build_handout(3, "stub")
    cell = next(c for c in nb["cells"]
                if "3.2" in c["metadata"]["microgpt"].get("exercises", []))
    fill = {"grader_pid": grader_pid, "repo": str(stages.ROOT), "folder": str(folder),
            "probes": str(PROBES), "helpers": str(HELPERS)}
    text = ATTACK_CELL.get(name) or ATTACK_BODY[name]
    for key, value in fill.items():
        text = text.replace("{" + key + "}", str(value)).replace("{" + key + "!r}", repr(value))
    if name in ATTACK_CELL:
        cell["source"] = text + "\n\n" + cell["source"]
    else:
        assert cell["source"].count(STUB) == 1
        cell["source"] = cell["source"].replace("    " + STUB, text.lstrip("\n"))
    return exercises.dumps(nb)


def nobody_python():
    """A Python 3.11+ that uid 65534 can run (the sandbox's Python for setpriv), or None."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    for python in ["/usr/local/bin/python3", "/usr/bin/python3", sys.executable]:
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                               python, "-c", "import sys; assert sys.version_info >= (3, 11); "
                               "import os; print(os.readlink('/proc/self/exe'))"],
                              capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip()   # a launcher may have started another Python
    return None


@pytest.fixture(scope="module", params=["own_user", "unprivileged_user"])
def sandbox_user(request):
    """Grade as the tests' own user, then (as root) with bwrap started by uid 65534."""
    require_sandbox()
    if request.param == "unprivileged_user":
        python = nobody_python()
        if python is None:
            pytest.skip("needs root, setpriv and a Python 3.11+ that uid 65534 can run "
                        "(not root: the tests' own user is the unprivileged path)")
        patch = pytest.MonkeyPatch()
        patch.setattr(grade, "LAUNCHER", ["setpriv", "--reuid=65534", "--regid=65534",
                                          "--clear-groups"])
        patch.setattr(grade, "SANDBOX_PYTHON", python)
        request.addfinalizer(patch.undo)
    return request.param


@pytest.fixture(scope="module")
def graded_class(sandbox_user, tmp_path_factory):
    """The attack class, graded; (results, the hashes of probes.py and helpers.py before
    grading and after, the reports' folder)."""
    tmp = tmp_path_factory.mktemp(sandbox_user)
    folder = tmp / "class"
    folder.mkdir()
    (folder / "alice.ipynb").write_text(make_submission(3, "correct"))
    (folder / "bob_export.py").write_text(make_submission(3, "py"))
    (folder / "cut_graph.ipynb").write_text(make_submission(3, "wrong", "3.2", 1))
    for name in [*ATTACK_CELL, *ATTACK_BODY]:
        (folder / f"{name}.ipynb").write_text(attack_notebook(name, os.getpid(), folder))
    for name, text in UNPARSABLE.items():
        (folder / name).write_text(text)
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (PROBES, HELPERS)]
    rows, _ = grade.grade_folder(3, folder, tmp / "grades", timeout=10, quiet=True)
    after = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (PROBES, HELPERS)]
    return {path.stem: res for path, res in rows}, before, after, tmp / "grades"


def test_sandboxed_code_cannot_fork_see_the_grader_reach_files_or_leave_any(sandbox_user):
    """What the sandbox itself forbids, asked from inside it."""
    canary = f"/tmp/grader-canary-{os.getpid()}"
    code = f"""
import os, socket


def attempt(action):
    try:
        return str(action())
    except Exception as e:
        return type(e).__name__


def fork():
    if os.fork() == 0:
        os._exit(0)
    return 'forked'


def write(path):
    with open(path, 'w') as f:
        f.write('left behind')
    return 'written'


FOUND = {{'fork': attempt(fork), 'uid': attempt(os.getuid),
         'repository': attempt(lambda: os.listdir({str(stages.ROOT)!r})),
         'processes': attempt(lambda: len([p for p in os.listdir('/proc') if p.isdigit()])),
         'network': attempt(lambda: socket.create_connection(('1.1.1.1', 80), timeout=1)),
         'scratch': attempt(lambda: write({canary!r})),
         'other folders': [attempt(lambda: write(p)) for p in ['/x', '/dev/x', '/dev/shm/x']],
         'setuid programs': attempt(lambda: 'NoNewPrivs:\t1' in open('/proc/self/status').read())}}
"""
    probes = ("def probe_spy(ns):\n"
              "    return [(k, 0, lambda v=v: v) for k, v in ns['FOUND'].items()]\n")
    job = {"context": [], "probes": probes, "name": "spy", "exercise": "0.0", "defines": [],
           "kind": "py"}
    with tempfile.TemporaryFile() as submission:   # the code as the tagged cell of a .py export
        submission.write(f"# %% exercise 0.0\n{code}".encode())
        submission.flush()
        answer, reason = grade.run_job(job, {"timeout": 10, "memory_mb": 1024, "isolated": True},
                                       submission.fileno())
    assert reason is None and answer["cell"] is None, (reason, answer)
    found = {label: case["value"] for label, case in answer["cases"].items()}
    assert found["fork"] == "BlockingIOError"   # the process limit holds
    assert found["uid"] == "65534"
    assert found["repository"] == "FileNotFoundError"
    assert found["processes"] in ("1", "2")   # bubblewrap's init and itself: not the grader
    assert found["network"] == "OSError"
    assert found["scratch"] == "written" and not os.path.exists(canary)
    assert "written" not in found["other folders"]   # only the two small scratch folders
    assert found["setuid programs"] == "True"   # no_new_privs: su or mount give nothing


@pytest.mark.slow
@pytest.mark.parametrize("attack", [*ATTACK_CELL, *ATTACK_BODY])
def test_every_attack_scores_zero_on_the_exercise_it_attacks(graded_class, attack):
    results = graded_class[0]
    assert results[attack]["3.2"][0] == 0.0, results[attack]["3.2"]


def test_honest_classmates_keep_full_marks_beside_the_attacks(graded_class):
    results = graded_class[0]
    for student in ["alice", "bob_export"]:
        assert results[student] == {ex_id: (10.0, "all checks passed")
                                    for ex_id in ["3.1", "3.2", "3.3"]}


def test_forged_and_malformed_answers_are_named_in_the_feedback(graded_class):
    results = graded_class[0]
    assert results["malformed_result"]["3.2"][1].startswith("malformed answer")
    assert results["floods_output"]["3.2"][1].startswith("oversized answer")
    assert "no answer" in results["forged_50_passes"]["3.2"][1]
    assert results["replaced_exec"]["3.2"][1].startswith("raised KeyError")


def test_right_values_from_a_cut_graph_lose_the_gradient_points(graded_class):
    points, reason = graded_class[0]["cut_graph"]["3.2"]
    assert 0 < points < 10.0
    assert reason.startswith("gradient of attention wrt q, keys and values: ['q'][0]: yours 0,")


def test_a_submission_cannot_rewrite_the_checks(graded_class):
    _, before, after, _ = graded_class
    assert before == after


def test_unparsable_notebooks_score_zero_and_the_class_is_still_graded(graded_class):
    results, *_, grades = graded_class
    for name in UNPARSABLE:
        for ex_id in ["3.1", "3.2", "3.3"]:
            points, reason = results[Path(name).stem][ex_id]
            assert points == 0.0 and reason.startswith("cannot read the submission"), reason
    rows = (grades / "grades.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 + len(ATTACK_CELL) + len(ATTACK_BODY) + len(UNPARSABLE)


def test_the_grader_stays_small_while_a_submission_floods_its_output(tmp_path):
    require_sandbox()
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "flood.ipynb").write_text(attack_notebook("floods_output", 0, folder))
    # the peak resident memory of the grader's own process: VmHWM, since ru_maxrss would carry
    # the high-water mark of this (forking) test process across exec
    measure = ("import sys\n"
               f"sys.path.insert(0, {str(TOOLS)!r})\n"
               "import grade\n"
               f"grade.grade_folder(3, {str(folder)!r}, {str(tmp_path / 'out')!r}, quiet=True)\n"
               "print(next(int(line.split()[1]) for line in open('/proc/self/status')\n"
               "           if line.startswith('VmHWM')) // 1024)\n")
    proc = subprocess.run([sys.executable, "-c", measure], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.split()[-1]) < 400   # MB, the grader's own peak resident memory
    assert "oversized answer" in (tmp_path / "out" / "feedback.csv").read_text()


def test_without_a_sandbox_the_grader_refuses_in_one_line(tmp_path):
    (tmp_path / "a.py").write_text("def rmsnorm(x):\n    return x\n")
    proc = subprocess.run([sys.executable, str(TOOLS / "grade.py"), "3", str(tmp_path)],
                          capture_output=True, text=True, env={"PATH": "/nonexistent"})
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no sandbox: bubblewrap (bwrap) is not installed")
    assert proc.stderr.count("\n") == 1
