"""The Markdown pages point at files that exist: every relative link in every .md file of the
repository (README, glossary, model diagrams, folder READMEs) resolves, and the README's test
command is the one CI runs.

Run: python -m pytest -q tests/test_docs_links.py
"""
import re
from pathlib import Path

import repo

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")   # [text](target)


def markdown_pages():
    """Every Markdown page that is published (outside hidden folders, npm's and the site's).
    The tools' templates are not pages: the pages they fill are checked instead."""
    templates = ROOT / "tools" / "templates"
    return [path for path in repo.published_files(ROOT)
            if path.suffix == ".md" and path.parent != templates]


def relative_links(text):
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)   # code blocks hold no links
    targets = LINK.findall(text)
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def base_of(page):
    """The folder a page's links are relative to: a generated page's, for its sources (notebook
    prose becomes notebooks/*.ipynb)."""
    if page.parent == ROOT / "notebooks" / "prose":
        return ROOT / "notebooks"
    return page.parent


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    checked = 0
    for page in markdown_pages():
        for target in relative_links(page.read_text(encoding="utf-8")):
            checked += 1
            if not (base_of(page) / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert checked > 100   # README, glossary and diagrams link every script and notebook
    assert not broken, broken


def test_readme_test_command_is_what_ci_runs():
    command = "pip install -r requirements-dev.txt && python -m pytest -q"
    assert command in (ROOT / "README.md").read_text(encoding="utf-8")
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_readme_gives_the_first_command_within_30_lines_and_250_words():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    before = text[:text.index("python train0_bigram.py")]
    assert before.count("\n") < 30
    assert len(before.split()) < 250


def test_readme_quotes_no_per_seed_range():
    """Per-seed ranges and ablation tables live in benchmarks/experiments/README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert not re.search(r"per seed|min[-–]max|\(\d\.\d+[-–]\d\.\d+\)", text)
