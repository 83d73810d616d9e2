"""Move every link to the course's GitHub repository (Colab badges, links, data URLs, the
in-browser site's owner.github.io/name address) to another one, in place, re-executing nothing:
the notebooks' source hash sees stages.PLACEHOLDER for the name. Reads and rewrites GITHUB_REPO
in tools/stages.py and every published page (Markdown and notebooks outside hidden folders).

  python tools/repo.py                     print the configured 'owner/name'
  python tools/repo.py --set owner/name    set it and rewrite every link
  python tools/repo.py --from-git          the same, owner/name from the github.com remote origin
  python tools/repo.py --check             fail if a published link names another repository
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

import stages
from stages import GITHUB_BRANCH, GITHUB_REPO, CourseError

ROOT = stages.ROOT
PUBLISHED = ["**/*.md", "**/*.ipynb"]   # every page and notebook, outside hidden folders
UNPUBLISHED = {"node_modules", "_site"}   # npm's packages and the built site (web/)
# what comes right before an owner/name: the URL forms the tools write, and the setup cell's
# `GITHUB_REPO = '...'` line in every notebook
PREFIXES = r"(https://github\.com/|https://colab\.research\.google\.com/github/|" \
           r"https://raw\.githubusercontent\.com/|GITHUB_REPO = '|GITHUB_REPO = \")"
NAME = r"[A-Za-z0-9-]+/[A-Za-z0-9._-]+"
VALID = re.compile(rf"^{NAME}$")


def site_form(name):
    """owner/name as the in-browser site's address spells it: owner.github.io/name."""
    owner, repo_name = name.split("/")
    return f"https://{owner.lower()}.github.io/{repo_name}/"


def replace_repo(text, old, new):
    """`text` with owner/name `old` replaced by `new` wherever a link or the setup names it."""
    text = re.sub(PREFIXES + re.escape(old) + r"(?=[/'\"])", lambda m: m.group(1) + new, text)
    return text.replace(site_form(old), site_form(new))


def named_repos(text):
    """Every owner/name that a link or setup line in `text` names (badge images excepted)."""
    pattern = PREFIXES + rf"({NAME})(?=/blob/|/{GITHUB_BRANCH}/|')"
    names = {match.group(2) for match in re.finditer(pattern, text)}
    site = r"https://([A-Za-z0-9-]+)\.github\.io/([A-Za-z0-9._-]+)/"
    names |= {f"{m.group(1)}/{m.group(2)}" for m in re.finditer(site, text)}
    return names


def published_files(root=ROOT):
    return [path for pattern in PUBLISHED for path in sorted(Path(root).glob(pattern))
            if not any(part.startswith(".") or part in UNPUBLISHED
                       for part in path.relative_to(root).parts)]


def from_git(root=ROOT):
    """owner/name of the github.com remote `origin`; CourseError if there is none."""
    try:
        url = subprocess.run(["git", "remote", "get-url", "origin"], cwd=root, check=True,
                             capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as e:
        raise CourseError(f'no git remote "origin" ({e})') from None
    match = re.match(r"^(?:https://|ssh://git@|git@)github\.com[/:]([^/]+/[^/]+?)(?:\.git)?/?$",
                     url)
    if not match:
        raise CourseError(f"origin is not a github.com repository: {url}")
    return match.group(1)


def set_repo(new, root=ROOT):
    """Point every link at `new`; returns the files changed (paths relative to root)."""
    if not VALID.match(new):
        raise CourseError(f"not an owner/name: {new!r}")
    changed = []
    this = Path(root) / "tools" / "stages.py"
    text = this.read_text(encoding="utf-8")
    old = re.search(r'^GITHUB_REPO = "([^"]*)"', text, re.M).group(1)
    for path in [this] + published_files(root):
        before = path.read_text(encoding="utf-8")
        after = replace_repo(before, old, new)
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed.append(str(path.relative_to(root)))
    return changed


def stale_links(root=ROOT):
    """['path: other/name', ...] for links in published files that name another repository."""
    return [f"{path.relative_to(root)}: {name}" for path in published_files(root)
            for name in sorted(named_repos(path.read_text(encoding="utf-8")) - {GITHUB_REPO})]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--set", metavar="OWNER/NAME", help="the repository to link to")
    group.add_argument("--from-git", action="store_true", help="owner/name from git origin")
    group.add_argument("--check", action="store_true", help="fail on links to another repo")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_links()
        for line in stale:
            print(line, file=sys.stderr)
        if stale:
            raise CourseError(f"links to another repository than {GITHUB_REPO}: run python "
                              "tools/repo.py --set OWNER/NAME")
        print(f"every link names {GITHUB_REPO}")
    elif args.set or args.from_git:
        new = args.set or from_git()
        changed = set_repo(new)
        print(f"{new}: {len(changed)} files changed" + "".join(f"\n  {p}" for p in changed))
    else:
        print(GITHUB_REPO)


if __name__ == "__main__":
    stages.run(main)
