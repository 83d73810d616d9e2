"""How an answer is compared with the reference's: one definition for tools/grade.py (which
imports it), its sandbox (grade.py runs this file's text before runner.py's) and nbgrader's
hidden checks (tools/nbgrader_course.py copies these functions into each hidden check cell).
"""
# ruff: noqa: F821  (in a hidden check cell, helpers.py defines patched and expect)
import json


def plain(x, depth=0):
    """Numbers, strings and nested lists / dicts of them (a Value becomes its .data)."""
    if depth > 30:
        raise ValueError("nested too deep")
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, dict):
        return {str(k): plain(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v, depth + 1) for v in x]
    if hasattr(x, "data"):
        return plain(x.data, depth + 1)
    return repr(x)[:80]


def short(x, digits=6):
    text = json.dumps(x) if not isinstance(x, float) else f"{x:.{digits}g}"
    return text if len(text) <= 60 else text[:57] + "..."


def mismatch(got, want, tolerance, where=""):
    """None if got matches want (numbers within tolerance, relative above 1), else where the
    first difference is. want is the reference's answer; got is untrusted."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"{where or 'the answer'}: yours {short(got)}, expected keys {sorted(want)}"
        return next((m for k in want if (m := mismatch(got[k], want[k], tolerance,
                                                      f"{where}[{k!r}]"))), None)
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{where or 'the answer'}: yours {short(got)}, expected {len(want)} entries"
        return next((m for k, (g, w) in enumerate(zip(got, want))
                     if (m := mismatch(g, w, tolerance, f"{where}[{k}]"))), None)
    digits = 6
    if isinstance(want, float):
        ok = (isinstance(got, (int, float)) and not isinstance(got, bool)
              and abs(got - want) <= tolerance * max(1.0, abs(want)))
        while not ok and isinstance(got, float) and digits < 17 and \
                f"{got:.{digits}g}" == f"{want:.{digits}g}":
            digits += 1   # enough digits to see the difference
    else:
        ok = type(got) is type(want) and got == want
    return None if ok else \
        f"{where}: yours {short(got, digits)}, expected {short(want, digits)}".lstrip(": ")


def probe_check(ns, probe, reference, others="", names=()):
    """nbgrader's hidden check: the grader's probe on the student's code in ns, with the stage's
    other exercises' reference solutions (the source `others`, defining `names`) in place
    meanwhile, as in the grader's context; every case must match reference {label: answer}."""
    failures = []
    with patched(ns, **dict.fromkeys(names)):
        exec(others, ns)
        cases = probe(ns)
        expect(sorted(label for label, _, _ in cases) == sorted(reference), "the probe changed")
        for label, tolerance, thunk in cases:
            try:
                problem = mismatch(plain(thunk()), reference[label], tolerance)
            except NotImplementedError:
                raise
            except Exception as e:
                problem = f"raised {type(e).__name__}: {e}"
            if problem:
                failures.append(f"{label}: {problem}")
    expect(not failures, "; ".join(failures)[:900])
