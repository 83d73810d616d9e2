"""Tests for diffs/ (made by tools/make_diffs.py) and tools/stages.py: the diffs are fresh,
each .diff turns the old script into the new one, the pages load nothing from the network,
and split_sections gives back every stage script exactly.

Run: python -m pytest -q tests/test_diffs.py
"""
import html.parser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"
import make_diffs  # noqa: E402
import stages  # noqa: E402

PAIRS = range(len(stages.STAGE_FILES) - 1)
MISSING = [name for name in stages.STAGE_FILES if not (stages.ROOT / name).exists()]
needs_scripts = pytest.mark.skipif(bool(MISSING), reason=f"stage scripts missing: {MISSING}")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def apply_unified_diff(old_text, diff_text):
    """old_text with the hunks of diff_text applied. Every context and '-' line must match
    old_text exactly, else ValueError. Lines before the first hunk (comment, ---, +++) are
    skipped, as patch does."""
    body = []
    for line in stages.split_lines(diff_text):
        if line.startswith("\\"):  # '\ No newline at end of file': the line before has none
            body[-1] = body[-1][:-1]
        else:
            body.append(line)
    old = stages.split_lines(old_text)
    new = []
    done = 0  # old lines already copied or removed
    in_hunk = False
    for line in body:
        hunk = HUNK.match(line)
        if hunk:
            start = int(hunk.group(1)) - 1  # 0-based first old line of the hunk
            if hunk.group(2) == "0":  # an empty old range names the line before it
                start += 1
            new += old[done:start]
            done = start
            in_hunk = True
        elif not in_hunk:
            continue
        elif line.startswith("+"):
            new.append(line[1:])
        elif line.startswith((" ", "-")):
            if done >= len(old) or old[done] != line[1:]:
                raise ValueError(f"old line {done + 1} does not match the diff: {line!r}")
            if line.startswith(" "):
                new.append(line[1:])
            done += 1
        else:
            raise ValueError(f"not a diff line: {line!r}")
    return "".join(new + old[done:])


class RemoteResources(html.parser.HTMLParser):
    """Collects every src= or href= that leaves the page's folder, and any URL in <style>."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.in_style = False

    def handle_starttag(self, tag, attrs):
        self.in_style = tag == "style"
        for name, value in attrs:
            if name in ("src", "href") and re.match(r"\s*(https?:|//)", value or "", re.I):
                self.found.append(f"<{tag} {name}={value}>")

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if self.in_style and re.search(r"https?:|@import|url\(", data, re.I):
            self.found.append(f"<style> {data.strip()[:60]}")


@pytest.fixture
def fake_root(tmp_path):
    """A folder with six tiny stage scripts, for testing the tools without the real ones."""
    for i, name in enumerate(stages.STAGE_FILES):
        text = f'"""Stage {i}: fake stage."""\nimport math\n\n# === data ===\ndocs = []\n'
        text += "".join(f"\n# === part{j} ===\nx{j} = {j}\n" for j in range(i))
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_split_sections_puts_each_header_line_in_its_section():
    text = '"""Doc."""\nimport math\n# === data ===\ndocs = []\n\n# === model ===\nx = 1'
    sections = stages.split_sections(text)
    assert sections == [
        ("preamble", '"""Doc."""\nimport math\n'),
        ("data", "# === data ===\ndocs = []\n\n"),
        ("model", "# === model ===\nx = 1"),
    ]


@needs_scripts
@pytest.mark.parametrize("i", range(len(stages.STAGE_FILES)))
def test_split_sections_gives_back_every_stage_script_exactly(i):
    text = stages.stage_path(i).read_bytes().decode("utf-8")
    sections = stages.split_sections(text)
    assert sections[0][0] == "preamble"
    assert "".join(body for _, body in sections) == text


def test_apply_unified_diff_reproduces_the_new_text_and_rejects_the_wrong_old_text(fake_root):
    old = stages.read_stage(1, fake_root)
    new = stages.read_stage(2, fake_root) + "last line without a newline"
    (fake_root / stages.STAGE_FILES[2]).write_text(new, encoding="utf-8")
    diff = make_diffs.make_diff(1, fake_root)
    assert apply_unified_diff(old, diff) == new
    with pytest.raises(ValueError):
        apply_unified_diff(old.replace("x0 = 0", "x0 = 9"), diff)


@needs_scripts
def test_generated_diffs_are_fresh():
    problems = make_diffs.check()
    assert problems == [], "run: python tools/make_diffs.py"


@needs_scripts
@pytest.mark.parametrize("k", PAIRS)
def test_each_diff_turns_the_old_script_into_the_new(k):
    old = stages.stage_path(k).read_bytes().decode("utf-8")
    new = stages.stage_path(k + 1).read_bytes().decode("utf-8")
    diff = (stages.ROOT / "diffs" / f"{stages.diff_name(k + 1)}.diff").read_text(encoding="utf-8")
    assert apply_unified_diff(old, diff) == new


@needs_scripts
@pytest.mark.skipif(shutil.which("patch") is None, reason="no patch program")
@pytest.mark.parametrize("k", PAIRS)
def test_each_diff_applies_with_patch(k, tmp_path):
    diff = stages.ROOT / "diffs" / f"{stages.diff_name(k + 1)}.diff"
    out = tmp_path / "patched.py"
    old = stages.stage_path(k)
    command = ["patch", "-s", "-F", "0", "-o", str(out), str(old), "-i", str(diff)]  # no fuzz
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert out.read_bytes() == stages.stage_path(k + 1).read_bytes()


# The most lines each adjacent diff may add and remove: its size when issue 16 set this budget
# (each then under issue 9's budget, the diffs before its lean rewrite). A diff that grows must
# raise its budget here, on purpose.
DIFF_BUDGET = {1: (143, 21), 2: (89, 101), 3: (61, 13), 4: (46, 34), 5: (20, 11)}


@needs_scripts
@pytest.mark.parametrize("i", range(1, len(stages.STAGE_FILES)))
def test_adjacent_diff_stays_within_its_budget(i):
    added, removed = stages.diff_counts(i)
    added_budget, removed_budget = DIFF_BUDGET[i]
    assert added <= added_budget and removed <= removed_budget, (added, removed)


@needs_scripts
@pytest.mark.parametrize("k", PAIRS)
def test_html_loads_nothing_from_the_network(k):
    page = stages.ROOT / "diffs" / f"{stages.diff_name(k + 1)}.html"
    finder = RemoteResources()
    finder.feed(page.read_text(encoding="utf-8"))
    assert finder.found == []


@needs_scripts
def test_every_generated_file_says_so_in_its_first_line():
    for rel in make_diffs.generate():
        with open(stages.ROOT / rel, encoding="utf-8") as f:
            first_line = f.readline()
        assert "generated by tools/make_diffs.py" in first_line, rel


def test_html_is_byte_identical_when_made_twice_in_one_process(fake_root):
    assert make_diffs.make_html(0, fake_root) == make_diffs.make_html(0, fake_root)


def test_check_lists_stale_missing_and_extra_files(fake_root):
    assert "missing: diffs/README.md" in make_diffs.check(fake_root)
    make_diffs.write(fake_root)
    assert make_diffs.check(fake_root) == []
    (fake_root / "diffs" / "train0_to_train1.diff").write_text("edited\n", encoding="utf-8")
    (fake_root / "diffs" / "train1_to_train2.html").unlink()
    (fake_root / "diffs" / "train5_to_train6.diff").write_text("old pair\n", encoding="utf-8")
    assert make_diffs.check(fake_root) == [
        "stale: diffs/train0_to_train1.diff",
        "missing: diffs/train1_to_train2.html",
        "extra: diffs/train5_to_train6.diff",
    ]


def test_check_command_exits_1_when_stale_and_0_when_fresh(fake_root):
    command = [sys.executable, str(TOOLS / "make_diffs.py"), "--root", str(fake_root)]
    assert subprocess.run(command + ["--check"], capture_output=True).returncode == 1
    assert subprocess.run(command, capture_output=True).returncode == 0
    assert subprocess.run(command + ["--check"], capture_output=True).returncode == 0
