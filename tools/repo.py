"""Where the course lives on GitHub: the one place that Open-in-Colab badges and links read.

A fork sets GITHUB_REPO to its own 'owner/name' (and GITHUB_BRANCH if it publishes from another
branch), then reruns the tools that write links: tools/readme_figures.py for README.md, and the
notebook tool for the notebooks. Standard library only; import it as `import repo` from tools/.
"""
GITHUB_REPO = 'microgpt-course/microgpt-course'   # 'owner/name' on github.com
GITHUB_BRANCH = 'main'
COLAB_BADGE = 'https://colab.research.google.com/assets/colab-badge.svg'


def colab_url(path):
    """Open-in-Colab URL of the notebook at `path`, relative to the repository root."""
    return f'https://colab.research.google.com/github/{GITHUB_REPO}/blob/{GITHUB_BRANCH}/{path}'
