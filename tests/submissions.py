"""Generated submissions for the grader's tests: a stage's handout as tools/exercises.py builds
it, solved, untouched, exported as .py, or with one exercise answered wrong, answered right
another way, or broken the ways a class breaks it.
"""
import re

import exercises
import stages
from stages import CourseError

# the plausible answers of tools/exercises.toml by exercise id, as (old, new) replacements
WRONG = {ex.id: [(w["old"], w["new"]) for w in ex.wrong] for ex in exercises.EXERCISES if ex.wrong}
RIGHT = {ex.id: [(w["old"], w["new"]) for w in ex.right] for ex in exercises.EXERCISES if ex.right}
CUT = {(ex.id, k) for ex in exercises.EXERCISES for k, w in enumerate(ex.wrong) if w.get("cut")}
TOGETHER = {ex.id for ex in exercises.EXERCISES if ex.together}
BREAKS = {   # how a class breaks an exercise's cell
    "loop": lambda src: re.sub(r'(\n    """.*?"""\n)', r"\1    while True:\n        pass\n", src,
                               count=1, flags=re.S),
    "raise": lambda src: 'raise RuntimeError("broken at import")\n' + src,
    "syntax": lambda src: src.replace("):\n", ")\n", 1),
}
SPY = '''import os as _os
def _peek():
    """What a cheat would try: the grader's probes and the reference."""
    found = []
    for path in [{paths}]:
        try:
            with open(path) as f:
                found.append(f.read()[:20])
        except OSError:
            pass
    if found:
        raise RuntimeError("read the answers: " + repr(found[:3]))


'''


def make_submission(stage, kind, ex_id=None, variant=0):
    """The text of a generated submission. kind: 'correct', 'untouched', 'py' (a correct .py
    export), 'no_checks' (every check cell deleted), 'wrong' / 'right' (exercise ex_id with its
    plausible wrong answer `variant` of WRONG, or a right one written another way of
    RIGHT), 'loop', 'raise', 'syntax' (BREAKS) or 'reads_answers' (SPY)."""
    nb = exercises.build_handout(stage, "stub" if kind == "untouched" else "solution")
    cell = next((c for c in nb["cells"] if ex_id in c["metadata"]["microgpt"].get("exercises",
                                                                                   [])), None)
    if kind in ("wrong", "right"):
        pairs = (WRONG if kind == "wrong" else RIGHT)[ex_id]
        for old, new in pairs if kind == "wrong" and ex_id in TOGETHER \
                else [pairs[variant]]:
            if cell["source"].count(old) != 1:
                raise CourseError(f"mutant of {ex_id} does not match: {old!r}")
            cell["source"] = cell["source"].replace(old, new)
    elif kind in BREAKS:
        cell["source"] = BREAKS[kind](cell["source"])
    elif kind == "reads_answers":
        paths = f"{str(exercises.CHECKS_DIR / 'probes.py')!r}, {str(stages.stage_path(stage))!r}"
        cell["source"] = SPY.replace("{paths}", paths) + \
            cell["source"].replace('"""\n', '"""\n    _peek()\n', 1)
    elif kind == "no_checks":
        nb["cells"] = [c for c in nb["cells"] if c["metadata"]["microgpt"].get("source")
                       != "check"]
    if kind != "py":
        return exercises.dumps(nb)
    return "".join(f'# %%{" exercise " if ids else ""}{" ".join(ids)}\n{c["source"]}\n'
                   for c in nb["cells"] if c["cell_type"] == "code"
                   for ids in [c["metadata"]["microgpt"].get("exercises", [])])
