"""Build data/repeats.txt, the attention demo's data: random strings written twice.

Each line is LENGTH random lowercase letters followed by the same letters again ('qxdqxd').
The first half cannot be predicted (every letter is a uniform guess among 26); the second half
is a copy, so a model predicts it only by looking back LENGTH - 1 positions: attention can, a
model that sees only the current position cannot. tools/experiments.py trains stage 3 on it.

    python tools/build_repeats.py            # writes data/repeats.txt
    python tools/build_repeats.py --check    # exit 1 if data/repeats.txt differs
Standard library only; the same file on every machine (Python's random is seeded).
"""
import argparse
import random
import string

import stages

OUT = stages.ROOT / "data" / "repeats.txt"
SEED = 0
LINES = 5000
LENGTH = 3


def render():
    rng = random.Random(SEED)
    lines = []
    for _ in range(LINES):
        half = "".join(rng.choice(string.ascii_lowercase) for _ in range(LENGTH))
        lines.append(half + half)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    check, stale = parser.parse_args().check, []
    stages.write_or_check(OUT, render(), check, stale)
    if stale:
        raise stages.CourseError(f"{OUT.name} is stale: run python tools/build_repeats.py")
    print(f"{OUT.name} is up to date" if check else f"wrote {OUT.name}: {LINES} lines")


if __name__ == "__main__":
    stages.run(main)
