"""How a probe's cases are answered and compared with the reference's, for tools/grade.py, its
sandboxes (this text runs before runner.py's) and nbgrader's hidden checks (which copy it)."""
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


def error(e, where=None):
    """One line for an exception: of the student's cell (where = its line) or of a probe case."""
    if isinstance(e, NotImplementedError) and where is None:
        return f"not implemented ({e})"[:300]
    text = f"raised {type(e).__name__}: {e}" if where is None else \
        f"your cell raised {type(e).__name__} at line {where}: {e}"
    return text[:200] + ("; the grader runs only this exercise's cell, after the handout's own "
                         "code: put the helpers and imports it needs in this cell"
                         if isinstance(e, NameError) else "")


def answers(cases):
    """{label: {"value": plain data, "tolerance": ...} or {"error": one line}}: a probe's cases
    (label, tolerance, thunk), each thunk called."""
    found = {}
    for label, tolerance, thunk in cases:
        try:
            found[label] = {"value": plain(thunk()), "tolerance": tolerance}
        except BaseException as e:
            found[label] = {"error": error(e)}
    return found


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


def failures(reference, got):
    """[(label, what is wrong)] for each case of the reference's answers that `got` (untrusted
    answers, as answers() makes them) does not match within the case's tolerance."""
    found = []
    for label, want in reference.items():
        case = got.get(label)
        if not isinstance(case, dict) or ("value" not in case and "error" not in case):
            found.append((label, "no answer"))
        elif "value" not in case:
            found.append((label, str(case["error"])[:200]))
        elif problem := mismatch(case["value"], want["value"], want["tolerance"]):
            found.append((label, problem))
    return found


def probe_check(ns, probe, reference, others="", names=()):
    """nbgrader's hidden check: the grader's probe on the student's code in ns, with the stage's
    other exercises' reference solutions (the source `others`, defining `names`) in place
    meanwhile, as in the grader's context; every case must match the reference's answers."""
    with patched(ns, **dict.fromkeys(names)):
        exec(others, ns)
        wrong = failures(reference, answers(probe(ns)))
    expect(not wrong, "; ".join(f"{label}: {problem}" for label, problem in wrong)[:900])
