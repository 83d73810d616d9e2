# ruff: noqa: Q000, F401  (handout text: tools/exercises.py copies this file but this line)
# notebook-only: exercise checks. Each check cell below calls your function on small inputs and
# compares the result with an independent answer (a formula computed another way, finite
# differences, or a small case worked out by hand), so each exercise is checked on its own.
import contextlib
import math
import random


class CheckFailed(Exception):
    """A check found a wrong answer; the message says what was expected and what you returned."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def as_float(x):
    """A number, or the .data of a Value."""
    return float(x.data) if hasattr(x, 'data') else float(x)


def as_floats(xs):
    return [as_float(x) for x in xs]


def show(x, digits=6):
    if isinstance(x, (list, tuple)):
        return '[' + ', '.join(show(v, digits) for v in x) + ']'
    if isinstance(x, float):
        return f'{x:.{digits}g}'
    return repr(x)


def readable(x):
    """Values shown by their .data, so a message shows numbers."""
    if isinstance(x, (list, tuple)):
        return [readable(v) for v in x]
    return x.data if hasattr(x, 'data') else x


def is_close(got, want, tol):
    if isinstance(want, (list, tuple)):
        return (isinstance(got, (list, tuple)) and len(got) == len(want)
                and all(is_close(g, w, tol) for g, w in zip(got, want)))
    try:
        got = as_float(got)
    except (TypeError, ValueError):
        return False
    return abs(got - want) <= tol * max(1.0, abs(want))


def expect_close(label, got, want, tol=1e-6, want_text=None):
    """`label` should be `want`: numbers or lists of numbers (Values compare by .data)."""
    if not is_close(got, want, tol):
        got = readable(got)
        digits = 6
        while digits < 17 and show(got, digits) == show(want, digits):
            digits += 1   # enough digits to see the difference
        raise CheckFailed(f'{label} should be {want_text or show(want, digits)}, you returned '
                          f'{show(got, digits)}')


@contextlib.contextmanager
def patched(ns, **values):
    """Set names in the namespace for the duration of a check, then put the old ones back."""
    missing = object()
    old = {name: ns.get(name, missing) for name in values}
    ns.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is missing:
                ns.pop(name, None)
            else:
                ns[name] = value


def run_check(check, strict=False):
    """Run one check against this notebook's code and print what it found."""
    name = check.__name__.replace('check_', '', 1)
    try:
        check(globals())
    except NotImplementedError as e:
        print(f'... not done yet: {e}')
        if strict:
            raise
    except CheckFailed as e:
        print(f'FAIL {name}: {e}')
        if strict:
            raise
    except Exception as e:
        print(f'FAIL {name}: your code raised {type(e).__name__}: {e}')
        if strict:
            raise
    else:
        print(f'PASS {name}: all checks passed')
