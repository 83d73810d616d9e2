"""Publishing under another GitHub owner/name: `python tools/repo.py --set owner/name` (or
`--from-git`) moves every Colab link and data URL, and the generated files stay fresh without
re-executing a notebook. Each test works on a copy of the repository.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
import repo  # noqa: E402

NEW = "alice-example/my-gpt.course"
CHECKS = ["tools/make_notebooks.py", "tools/exercises.py", "tools/readme_figures.py",
          "tools/repo.py"]


def copy_repository(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".git", "__pycache__",
                                                              ".pytest_cache"))
    return root


def run(root, *args):
    return subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True,
                          timeout=120)


def texts(root):
    return {path.relative_to(root): path.read_text(encoding="utf-8")
            for path in repo.published_files(root)}


def outputs(text):
    return [cell.get("outputs") for cell in json.loads(text)["cells"]]


def checks(root):
    """{tool: exit status of its --check} for the generators whose output holds links."""
    return {tool: run(root, tool, "--check").returncode for tool in CHECKS}


def test_set_moves_every_link_and_keeps_the_generated_files_fresh(tmp_path):
    root = copy_repository(tmp_path)
    fresh = checks(root)
    # the notebooks and handouts are fresh to begin with (the README figures are
    # tests/test_figures.py's business: here they only need to stay as they were)
    assert fresh["tools/make_notebooks.py"] == fresh["tools/exercises.py"] == 0
    before = texts(root)
    links = sum(text.count(repo.GITHUB_REPO) for text in before.values())
    assert links > 50   # badges, links and data URLs in the READMEs and 12 notebooks
    old_site, new_site = repo.site_form(repo.GITHUB_REPO), repo.site_form(NEW)
    site_links = sum(text.count(old_site) for text in before.values())
    assert site_links >= 8   # "run in your browser": the README, 6 notebooks, their index
    result = run(root, "tools/repo.py", "--set", NEW)
    assert result.returncode == 0, result.stderr
    after = texts(root)
    assert all(repo.GITHUB_REPO not in text for text in after.values())
    assert sum(text.count(NEW) for text in after.values()) == links
    assert sum(text.count(new_site) for text in after.values()) == site_links
    assert all(old_site not in text for text in after.values())
    for path, text in after.items():   # the stored outputs are kept, not re-executed
        if path.suffix == ".ipynb":
            assert outputs(text) == outputs(before[path]), path
    assert f'GITHUB_REPO = "{NEW}"' in (root / "tools" / "stages.py").read_text(encoding="utf-8")
    assert checks(root) == fresh   # nothing went stale, and no notebook was executed


def test_check_reports_a_link_to_another_repository(tmp_path):
    root = copy_repository(tmp_path)
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    readme.write_text(repo.replace_repo(text, repo.GITHUB_REPO, "someone/else"), encoding="utf-8")
    result = run(root, "tools/repo.py", "--check")
    assert result.returncode == 1
    assert "README.md: someone/else" in result.stderr


def test_from_git_reads_owner_and_name_from_the_origin_remote(tmp_path):
    root = copy_repository(tmp_path)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:bob/course.git"], cwd=root,
                   check=True)
    result = run(root, "tools/repo.py", "--from-git")
    assert result.returncode == 0, result.stderr
    assert run(root, "tools/repo.py").stdout == "bob/course\n"
    assert "https://colab.research.google.com/github/bob/course/blob/" in (
        root / "README.md").read_text(encoding="utf-8")


def test_a_remote_that_is_not_github_is_a_one_line_error(tmp_path):
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    for tool in ("repo.py", "stages.py"):
        shutil.copy(ROOT / "tools" / tool, root / "tools" / tool)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "remote", "add", "origin", "https://gitlab.com/bob/course.git"],
                   cwd=root, check=True)
    result = run(root, "tools/repo.py", "--from-git")
    assert result.returncode == 1
    assert result.stderr == "error: origin is not a github.com repository: " \
                            "https://gitlab.com/bob/course.git\n"
    assert run(root, "tools/repo.py", "--set", "not a name").returncode == 1
