"""Build the companion notebooks notebooks/train*.ipynb and their index notebooks/README.md.

Each notebook is the stage script, unchanged and complete, split into code cells, with the prose
of notebooks/prose/<stage>.md before (and pictures after) each part. A prose file is Markdown:
  # <title>                         the notebook's title; the paragraph under it is the goal,
  Teaches: <one line>               and this line, also under the title, goes in the index
  ## <section>: <heading text>      prose for the script section `# === <section> ===`
  ### <name>: <heading text>        prose for the part of that section that starts with the
                                    definition or assignment of <name> (a new code cell)
  ## try it: <heading text>         prose around the "try it" cell that ends the notebook: it
                                    runs the script and a copy changed by one line (TRY_IT
                                    below) at a small budget and prints both val losses
Under a heading, the text before the first ```python block (or before a line `<!-- after -->`)
comes before the code; the rest (text and ```python blocks, which become notebook-only cells
whose first line is `# notebook-only: ...`) comes after it. Every section needs prose, and a
heading that names no section or part is an error. The settings are the script's own first
cell (`# === settings ===`): a notebook changes them by editing that cell.

Prose never types a measured figure: `{{exp:KEY}}` stands for the figure of tools/experiments.py
with that key (`experiments.quotes()`, e.g. {{exp:ladder.s3.1000}} -> '2.432 ± 0.004 (3
seeds)'), read from the committed benchmarks/experiments/results.json. In a key, SHORT, LONG or
ABLATION_LONG stands for that budget of the experiments' plan, and {{exp:ABLATION_LONG}} alone
gives its number ('3,000'), so the prose follows a change of plan. A key that the plan will
measure but has not yet renders as "(not measured yet: KEY)" with a warning; any other key
stops the build. The figures are not part of a notebook's source hash: when the results
change, a plain build updates the text and keeps the outputs.

  python tools/make_notebooks.py            build; keeps outputs whose sources did not change
  python tools/make_notebooks.py --execute  build, run each notebook whose outputs are stale at
                                            default settings in a fresh kernel, store the outputs
                                            (all six: about 7 minutes; --force runs them all)
  python tools/make_notebooks.py --check    fail if a notebook or the index differs from a
                                            fresh build or its outputs came from older sources
The GitHub owner/name in badges and download URLs comes from tools/repo.py (`python
tools/repo.py --set owner/name` moves every link, outputs kept). Needs nbformat; --execute
also nbclient, ipykernel, matplotlib.
"""
import argparse
import copy
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repo  # noqa: E402
import stages  # noqa: E402

TOOL_VERSION = "3"   # bump when a change here alters what an executed notebook would show
NOTEBOOK_DIR = "notebooks"
PROSE_DIR = "notebooks/prose"
TOOL = "tools/make_notebooks.py"
FENCE = re.compile(r"^```(\w*)\s*$")
AFTER_MARKER = "<!-- after -->"
FIGURE = re.compile(r"\{\{exp:([^{}]+)\}\}")   # {{exp:KEY}}: a figure of tools/experiments.py
# budgets of tools/experiments.py a key may name instead of a number of steps, so that prose
# follows the plan: {{exp:ABLATION_LONG}} -> '3,000', {{exp:ablation.sgd.ABLATION_LONG}}
BUDGETS = ("SHORT", "LONG", "ABLATION_LONG")
TRY_IT_HEADING = "try it"   # the pseudo-section of a prose file that introduces the try-it cell
DEFAULT_STEPS = 1000   # every stage's default num_steps
DEMO_FILES = {3: ["data/repeats.txt", "tools/attention_probe.py"]}   # stage 3's attention demo
COMPUTED = "f'"   # a try-it edit whose new text starts so is an f-string the cell computes
TRY_STEPS = 300   # training steps of each run in a try-it cell (about 30 s for stages 3-5)
MEASURED_BOX = (   # said once in every notebook, so that the prose can quote plain figures
    '> **How the figures in the text are measured.** Each is a validation loss: the mean '
    'surprise, in nats per letter, at the next letter of 300 names the model never trained on '
    '(lower is better; e to the loss is the number of equally likely letters the model is in '
    'effect choosing between). Each is the mean of three runs, with seeds 1, 2 and 3; this '
    'notebook\'s own run uses seed 42, so its figures differ a little. A difference between two '
    'models is taken seed by seed: "on every seed" means all three runs agree. Every run: '
    '[benchmarks/experiments]({experiments}).')

class BuildError(Exception):
    """A prose file or script that cannot be turned into a notebook; one line for the user."""


def stem(i):
    return stages.STAGE_FILES[i][:-len(".py")]


def notebook_name(i):
    return f"{stem(i)}.ipynb"


def prose_path(i, root):
    return Path(root) / PROSE_DIR / f"{stem(i)}.md"


def github_url(path):
    return f"https://github.com/{repo.GITHUB_REPO}/blob/{repo.GITHUB_BRANCH}/{path}"


def colab_link(i):
    return repo.colab_url(f"{NOTEBOOK_DIR}/{notebook_name(i)}")


# --- prose ------------------------------------------------------------------------------------

class Unit:
    """The prose of one section or part: text before the code, then (kind, text) items after."""

    def __init__(self, name, heading, where):
        self.name = name
        self.heading = heading
        self.where = where
        self.before = ""
        self.after = []
        self.parts = {}


def split_unit_body(unit, lines):
    """Fill unit.before and unit.after from the Markdown lines under its heading."""
    before = []
    after = []
    in_after = False
    code = None
    for line in lines:
        if code is not None:
            if FENCE.match(line):
                after.append(("code", "".join(code).rstrip("\n")))
                code = None
            else:
                code.append(line)
            continue
        fence = FENCE.match(line)
        if fence:
            if fence.group(1) != "python":
                raise BuildError(f"{unit.where}: a code block must be ```python (a notebook cell)")
            in_after = True
            code = []
        elif line.strip() == AFTER_MARKER:
            in_after = True
        elif in_after:
            if after and after[-1][0] == "md":
                after[-1] = ("md", after[-1][1] + line)
            else:
                after.append(("md", line))
        else:
            before.append(line)
    if code is not None:
        raise BuildError(f"{unit.where}: a ```python block is not closed")
    unit.before = "".join(before).strip()
    unit.after = [(kind, text.strip() if kind == "md" else text) for kind, text in after]
    unit.after = [(kind, text) for kind, text in unit.after if text]
    for kind, text in unit.after:
        if kind == "code" and not text.startswith("# notebook-only:"):
            raise BuildError(f'{unit.where}: a notebook cell must start with "# notebook-only:"')


def parse_prose(text, path):
    """-> (title, goal, {section name: Unit}, teaches) of a prose file: the goal is the paragraph
    under the title, `teaches` the one line after 'Teaches: ' there (for the index)."""
    title = None
    blocks = []   # (level, name, heading, where, lines)
    intro = []
    in_code = False
    for number, line in enumerate(stages.split_lines(text), 1):
        if FENCE.match(line):
            in_code = not in_code
        match = None if in_code else re.match(r"^(#{1,3}) (.+?)\s*$", line)
        where = f"{path}:{number}"
        if match and len(match.group(1)) == 1:
            if title is not None or blocks:
                raise BuildError(f"{where}: only one # title, at the top")
            title = match.group(2)
        elif match:
            name, _, heading = match.group(2).partition(":")
            blocks.append((len(match.group(1)), name.strip(), heading.strip(), where, []))
        elif blocks:
            blocks[-1][4].append(line)
        else:
            intro.append(line)
    if title is None:
        raise BuildError(f"{path}: no # title line")
    teaches = [line for line in intro if line.startswith("Teaches: ")]
    if len(teaches) != 1:
        raise BuildError(f'{path}: needs one "Teaches: ..." line under the title (for the index)')
    intro.remove(teaches[0])
    units = {}
    section = None
    for level, name, heading, where, lines in blocks:
        unit = Unit(name, heading, where)
        split_unit_body(unit, lines)
        if level == 2:
            if name in units:
                raise BuildError(f'{where}: section "{name}" has prose twice')
            units[name] = unit
            section = unit
        elif section is None:
            raise BuildError(f"{where}: a ### part heading before any ## section heading")
        elif name in section.parts:
            raise BuildError(f'{where}: part "{name}" has prose twice')
        else:
            section.parts[name] = unit
    return title, "".join(intro).strip(), units, teaches[0][len("Teaches: "):].strip()


# --- script -----------------------------------------------------------------------------------

def split_parts(body):
    """Split a section's text where a blank line is followed by a top-level line outside any
    statement (so never inside a docstring or a call); joining the parts gives `body` back.
    Returns [(name, text)], the name being what the part defines or assigns first."""
    import ast
    lines = stages.split_lines(body)
    inside = set()   # 1-based numbers of the lines that continue a multi-line statement
    for node in ast.parse(body).body:
        inside.update(range(node.lineno + 1, node.end_lineno + 1))
    starts = [0]
    for k in range(1, len(lines)):
        line = lines[k]
        if (line.strip() and not line[0].isspace() and not lines[k - 1].strip()
                and k + 1 not in inside):
            starts.append(k)
    parts = []
    for a, b in zip(starts, starts[1:] + [len(lines)]):
        parts.append((part_name(lines[a:b]), "".join(lines[a:b])))
    return parts


def part_name(lines):
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        match = re.match(r"^(?:def|class)\s+(\w+)|^(\w+)", line)
        return (match.group(1) or match.group(2)) if match else line.strip()
    return ""


def introduced_in(i, section, root):
    """The earliest stage whose text of `section` is identical in every stage up to i."""
    text = dict(stages.read_sections(i, root)).get(section)
    j = i
    while j > 0 and dict(stages.read_sections(j - 1, root)).get(section) == text:
        j -= 1
    return j


# --- cells ------------------------------------------------------------------------------------

def md(text, i):
    return {"cell_type": "markdown", "metadata": {"microgpt": {"source": "prose"}},
            "source": text}


def script_cell(text, section):
    return {"cell_type": "code", "metadata": {"microgpt": {"source": "script", "section": section}},
            "source": text, "outputs": [], "execution_count": None}


def notebook_cell(text):
    return {"cell_type": "code", "metadata": {"microgpt": {"source": "notebook-only"}},
            "source": text, "outputs": [], "execution_count": None}


def header_markdown(i, title, goal, root):
    script = stages.STAGE_FILES[i]
    prose = f"{PROSE_DIR}/{stem(i)}.md"
    out = f"# {title}\n\n{goal}\n\n"   # the goal paragraph opens with the stage's question
    out += f"[![Open In Colab]({repo.COLAB_BADGE})]({colab_link(i)})\n\n"
    out += (f"*Generated by `{TOOL}` from [`{script}`]({github_url(script)}) and "
            f"`{prose}`: edit those, not this notebook.*\n\n")
    steps = []
    for j in range(len(stages.STAGE_FILES)):
        label = f"{j} {stages.concept(j)}"
        steps.append(f"**{label} (you are here)**" if j == i else f"[{label}]({colab_link(j)})")
    out += "**Where this sits in the course:** " + " &rarr; ".join(steps) + "\n\n"
    if i == 0:
        out += ("**What changed:** nothing yet; this is the first stage. Every later notebook "
                "starts with what its script changed since the one before.\n\n")
    else:
        added, removed = stages.diff_counts(i, root)
        changed = stages.changed_sections(i, root)
        old_names = [name for name, _ in stages.read_sections(i - 1, root)]
        new_names = [name for name, _ in stages.read_sections(i, root)]
        described = []
        for name in changed:
            if name not in old_names:
                described.append(f"{name} (new)")
            elif name not in new_names:
                described.append(f"{name} (removed)")
            else:
                described.append(name)
        diff_file = f"diffs/{stem(i - 1)[:6]}_to_{stem(i)[:6]}.diff"
        out += (f'**What changed since stage {i - 1}:** {added} lines added and {removed} removed '
                f'([the diff]({github_url(diff_file)})), in the sections: '
                f'{", ".join(described)}. Every other section is byte-for-byte the same as in '
                f'stage {i - 1}.\n\n')
    out += ("**How to use it:** run the cells from top to bottom (in Colab: *Runtime > Run all*). "
            "Cells marked `# notebook-only` are not part of the script: they set up the "
            "notebook, draw pictures, or let you experiment. Every other code cell is the "
            f"script `{script}` itself, in order and unchanged.\n\n")
    out += MEASURED_BOX.format(experiments=github_url("benchmarks/experiments/README.md"))
    return out


def setup_source(i):
    script = stages.STAGE_FILES[i]
    lines = [
        "# notebook-only: setup. Inside a copy of the repository this finds data/names.txt and",
        '# the script; anywhere else (Colab) it downloads them: the "try it" cell at the end runs',
        "# the script as a program. The script finds its data through __file__, which a notebook",
        "# does not have, so it is defined here.",
        "import json",
        "import os",
        "import re",
        "import urllib.request",
        "",
        f"GITHUB_REPO = '{repo.GITHUB_REPO}'   # from tools/repo.py: a fork edits it there",
        f"RAW_URL = f'https://raw.githubusercontent.com/{{GITHUB_REPO}}/{repo.GITHUB_BRANCH}/'",
        f"SCRIPT = '{script}'",
        f"NEEDED = {['data/names.txt', *DEMO_FILES.get(i, []), *try_it_scripts(i)]!r}",
        "",
        "",
        "def find_repo_root():",
        '    """The nearest folder, from here upwards, that holds every file of NEEDED."""',
        "    folder = os.getcwd()",
        "    while True:",
        "        if all(os.path.isfile(os.path.join(folder, name)) for name in NEEDED):",
        "            return folder",
        "        if os.path.dirname(folder) == folder:",
        "            return None",
        "        folder = os.path.dirname(folder)",
        "",
        "",
        "repo_root = find_repo_root()",
        "if repo_root is not None:",
        "    print(', '.join(NEEDED) + ': from this copy of the repository')",
        "else:",
        "    repo_root = os.getcwd()",
        "    for name in NEEDED:",
        "        if not os.path.isfile(name):",
        "            os.makedirs(os.path.dirname(name) or '.', exist_ok=True)",
        "            urllib.request.urlretrieve(RAW_URL + name, name)",
        "    print(', '.join(NEEDED) + f': downloaded from {RAW_URL}')",
        "__file__ = os.path.join(repo_root, SCRIPT)",
    ]
    if i > 0:
        lines += [
            "",
            "",
            "def stage_printout(notebook, cells='script'):",
            '    """What the script cells (or the notebook-only cells) of a committed notebook printed',
            "    in its last full run at the default settings: read from this repository, or from",
            '    GitHub; None if neither works."""',
            "    path = os.path.join(repo_root, 'notebooks', notebook)",
            "    try:",
            "        if os.path.isfile(path):",
            "            with open(path, encoding='utf-8') as f:",
            "                nb = json.load(f)",
            "        else:",
            "            with urllib.request.urlopen(RAW_URL + 'notebooks/' + notebook, timeout=30) as f:",
            "                nb = json.load(f)",
            "    except (OSError, ValueError):",
            "        return None",
            "    text = ''",
            "    for cell in nb['cells']:",
            "        if cell['metadata'].get('microgpt', {}).get('source') == cells:",
            "            for output in cell.get('outputs', []):",
            "                if output.get('name') == 'stdout':",
            "                    text += ''.join(output['text'])",
            "    return text",
        ]
    return "\n".join(lines)


def ending_cells(i):
    """The "Result" cell that closes stage i's script: its val loss in nats and in effective
    choices, next to the previous stage's committed run (its samples at the same temperature)."""
    lines = [f"# notebook-only: this stage's result next to stage {i - 1}'s" if i else
             "# notebook-only: this stage's result, the baseline the neural stages are measured "
             "against",
             f"print(f'stage {i} ({stages.concept(i)}), this run: val loss {{val_loss:.4f}} nats, '",
             "      f'about {math.exp(val_loss):.1f} effective choices per letter')"]
    seeds = (f"Over three seeds (see the box at the top) this stage scores "
             f"{{{{exp:ladder.s{i}.SHORT}}}}, about {{{{exp:ladder.s{i}.SHORT.choices}}}} "
             "effective choices per letter")
    if i == 0:
        lines += ["print(f'a uniform guess over the {vocab_size} tokens: '",
                  "      f'{math.log(vocab_size):.4f} nats, {vocab_size} choices')"]
        text = ("## Result\n\nThe samples above are what counting pairs of letters can do. "
                f"{seeds}, against 27 for a uniform guess.")
        return [md(text, i), notebook_cell("\n".join(lines))]
    previous = notebook_name(i - 1)
    lines += [
        f"previous = stage_printout('{previous}') or ''",
        "found = re.search(r'val loss: ([0-9.]+)', previous)",
        "if found is None:",
        f"    print('stage {i - 1}: no results (not executed yet, or no copy of the repository "
        "and no network)')",
        "else:",
        "    previous_val = float(found.group(1))",
        "    previous_samples = re.findall(r'sample \\d+: (.*)', previous)",
        f"    print(f'stage {i - 1} ({stages.concept(i - 1)}), committed notebook, default "
        "settings: '",
        "          f'val loss {previous_val:.4f} nats')",
        "    print(f'difference: {val_loss - previous_val:+.4f} nats')",
        f"    print('stage {i - 1} samples: ' + ', '.join(previous_samples))"]
    same_temperature = ""
    if i == 1:   # stage 0 has no temperature: its samples are drawn at 1
        lines += [
            "    rng = random.Random(0)   # its own generator: the script's state is untouched",
            "    at_one = []",
            "    for _ in previous_samples:",
            "        token_id = BOS",
            "        sample = []",
            "        for _ in range(block_size):",
            "            probs = softmax(gpt(token_id))   # temperature 1, as stage 0 samples",
            "            token_id = rng.choices(range(vocab_size), weights=probs)[0]",
            "            if token_id == BOS:",
            "                break",
            "            sample.append(uchars[token_id])",
            "        at_one.append(''.join(sample))",
            "    print('stage 1 samples at temperature 1: ' + ', '.join(at_one))"]
        same_temperature = (" Stage 0 has no temperature: it samples at 1. The samples above "
                            "are stage 1's at its default temperature, 0.5, which makes them "
                            "safer and so more name-like; to compare like with like, the cell "
                            "also draws stage 1's samples at temperature 1.")
    text = (f"## Result next to stage {i - 1}\n\nThe next cell sets this run's validation "
            f"loss next to stage {i - 1}'s and lists stage {i - 1}'s samples, both from the "
            f"outputs committed with `{NOTEBOOK_DIR}/{previous}` (a full run at the default "
            f"settings), read from this copy of the repository or downloaded from GitHub."
            f"{same_temperature}\n\n{seeds}; stage {i - 1} scores "
            f"{{{{exp:ladder.s{i - 1}.SHORT}}}}.")
    return [md(text, i), notebook_cell("\n".join(lines))]


# --- try it -----------------------------------------------------------------------------------

def try_it_spec(i):
    """(title, edits, settings of both runs, extra settings of the changed copy) of stage i's
    try-it cell; edits are exact (old, new) text edits of the script, each matching once, or None
    (stage 2 runs stage 1 beside itself). Stages 3 and 5 take an ablation of
    tools/experiments.py (a single definition)."""
    steps = f"--num_steps={TRY_STEPS}"
    if i == 0:
        return ("count every training name once instead of 1,000",
                [("num_steps = 1000   # training steps, one name each",
                  "f'num_steps = {len(train_docs)}   # every training name once'")],
                ["--num_samples=0"], [])
    if i == 1:
        return ("a smaller learning rate",
                [("learning_rate = 1.0   # at the first step; decays linearly to 0",
                  "learning_rate = 0.3   # at the first step; decays linearly to 0")],
                [steps, "--num_samples=0"], [])
    if i == 2:
        return ("stage 1 and stage 2 side by side", None, [steps, "--num_samples=0"], [])
    if i == 4:
        return ("one head instead of four",
                [("n_head = 4   # attention heads per layer", "n_head = 1   # attention heads per layer")],
                [steps, "--num_samples=0"], [])
    ablation = import_experiments().ABLATION_BY_NAME["s3_no_context" if i == 3 else "sgd"]
    return (ablation.title, list(ablation.edits), [steps, "--num_samples=0"],
            list(ablation.settings))


def try_it_scripts(i):
    """The scripts stage i's try-it cell runs (the setup cell fetches them outside the repo)."""
    return [stages.STAGE_FILES[1], stages.STAGE_FILES[2]] if i == 2 else [stages.STAGE_FILES[i]]


def try_it_source(i):
    title, edits, settings, copy_settings = try_it_spec(i)
    lines = [f"# notebook-only: try it: {title}",
             "import subprocess",
             "import sys",
             *(["import tempfile"] if i != 2 else []),
             "",
             "DATA = os.path.join(repo_root, 'data', 'names.txt')",
             "SETTINGS = [" + ", ".join(repr(s) for s in settings)
             + ", f'--data_path={DATA}']   # both runs"]
    if i == 2:
        lines += ["", "",
                  "def run(path):",
                  '    """Run a stage script as a program: its progress lines and val loss."""',
                  "    result = subprocess.run([sys.executable, path, *SETTINGS], capture_output=True,",
                  "                            text=True)",
                  "    if result.returncode != 0:",
                  "        raise RuntimeError(result.stderr)",
                  "    steps = re.findall(r'^step +(\\d+) / \\d+ \\| loss ([0-9.]+)', result.stdout, re.M)",
                  "    val = float(re.search(r'^val loss: ([0-9.]+)', result.stdout, re.M).group(1))",
                  "    return steps, val",
                  "",
                  "",
                  f"steps1, val1 = run(os.path.join(repo_root, '{stages.STAGE_FILES[1]}'))",
                  "steps2, val2 = run(__file__)",
                  "print('step   stage 1 loss   stage 2 loss')",
                  "for (step, loss1), (_, loss2) in zip(steps1, steps2):",
                  "    print(f'{step:>4}   {loss1:>12}   {loss2:>12}')",
                  "print(f'val loss: stage 1 {val1:.4f}, stage 2 {val2:.4f}, '",
                  "      f'difference {val2 - val1:+.4f}')"]
        return "\n".join(lines)
    # stage 0's new text is computed in the cell (an f-string); the others are plain strings
    pairs = []
    for old, new in edits:
        pairs.append(f"({old!r}, {new if new.startswith(COMPUTED) else repr(new)})")
    if copy_settings:
        lines.append(f"COPY_SETTINGS = {copy_settings!r}   # the changed copy only")
    lines += ["EDITS = [   # (old, new): each old text occurs once in the script"]
    lines += [f"    {pair}," for pair in pairs] + ["]"]
    lines += [
              "",
              "",
              "def val_loss_of(path, settings):",
              '    """Run a stage script as a program; the val loss it prints."""',
              "    result = subprocess.run([sys.executable, path, *settings], capture_output=True,",
              "                            text=True)",
              "    if result.returncode != 0:",
              "        raise RuntimeError(result.stderr)",
              "    return float(re.search(r'^val loss: ([0-9.]+)', result.stdout, re.M).group(1))",
              "",
              "",
              "with open(__file__, encoding='utf-8') as f:",
              "    source = f.read()",
              "print('the changed copy:')",
              "for old, new in EDITS:",
              "    assert source.count(old) == 1, 'each old text must occur once in the script'",
              "    source = source.replace(old, new)",
              "    print('-', old.strip())",
              "    print('+', new.strip())",
              "copy_path = os.path.join(tempfile.mkdtemp(), SCRIPT)",
              "with open(copy_path, 'w', encoding='utf-8') as f:",
              "    f.write(source)"]
    if copy_settings:
        lines += ["print('  and', ' '.join(COPY_SETTINGS))",
                  "copy_settings = SETTINGS + COPY_SETTINGS"]
    else:
        lines += ["copy_settings = SETTINGS"]
    lines += ["print(f'{SCRIPT}: val loss {val_loss_of(__file__, SETTINGS):.4f}')",
              "print(f'changed copy: val loss {val_loss_of(copy_path, copy_settings):.4f}')"]
    return "\n".join(lines)


def try_it_cells(i, unit):
    """The try-it section at the end of stage i's notebook: prose, the cell, prose after."""
    heading = "## Try it" + (f": {unit.heading}" if unit.heading else "")
    cells = [md(f"{heading}\n\n{unit.before}", i), notebook_cell(try_it_source(i))]
    for kind, text in unit.after:
        cells.append(md(text, i) if kind == "md" else notebook_cell(text))
    return cells


# --- measured figures -------------------------------------------------------------------------

def import_experiments():
    try:
        import experiments
    except ImportError as e:
        raise BuildError(f"cannot import tools/experiments.py ({e})")
    return experiments


def resolve_figures(text, where, missing):
    """stages.fill_figures (kept until readme_figures.py calls that itself)."""
    return stages.fill_figures(text, where, missing)


def read_prose(i, root):
    """parse_prose of stage i's prose file."""
    path = prose_path(i, root)
    if not path.is_file():
        raise BuildError(f"no prose file {PROSE_DIR}/{path.name}")
    return parse_prose(path.read_text(encoding="utf-8"), f"{PROSE_DIR}/{path.name}")


def build_cells(i, root):
    """The cells of stage i's notebook (no outputs) and its prose file's title."""
    rel = f"{PROSE_DIR}/{stem(i)}.md"
    title, goal, units, _ = read_prose(i, root)
    script = stages.read_stage(i, root)
    sections = stages.split_sections(script)
    section_names = [name for name, _ in sections]
    for name, unit in units.items():
        if name not in section_names and name != TRY_IT_HEADING:
            raise BuildError(f'{unit.where}: prose for section "{name}", which '
                             f'{stages.STAGE_FILES[i]} does not have')
    if not goal:
        raise BuildError(f"{rel}: no goal paragraph under the title")
    cells = [md(header_markdown(i, title, goal, root), i), notebook_cell(setup_source(i))]
    for name, body in sections:
        if not body:
            continue
        unit = units.get(name)
        if unit is None or not unit.before:
            raise BuildError(f'{rel}: section "{name}" of {stages.STAGE_FILES[i]} has no prose')
        j = introduced_in(i, name, root)
        if j < i:
            status = (f"*Unchanged since stage {j}; [stage {j}'s notebook]({colab_link(j)}) "
                      "explains it in depth. A short recap:*")
        elif i > 0 and name in dict(stages.read_sections(i - 1, root)):
            status = f"*Changed since stage {i - 1}.*"
        elif i > 0:
            status = "*New in this stage.*"
        else:
            status = ""
        heading = f"## {name}" + (f": {unit.heading}" if unit.heading else "")
        cells.append(md("\n\n".join(t for t in [heading, status, unit.before] if t), i))
        parts = split_parts(body)
        names = [part for part, _ in parts]
        for part in unit.parts.values():
            if names.count(part.name) != 1:
                found = "no part" if part.name not in names else "several parts"
                raise BuildError(f'{part.where}: section "{name}" has {found} named '
                                 f'"{part.name}" (parts: {", ".join(names)})')
        groups = [[None, ""]]   # (prose unit or None, code)
        for part, text in parts:
            if part in unit.parts and groups[-1][1]:
                groups.append([unit.parts[part], ""])
            elif part in unit.parts:
                groups[-1][0] = unit.parts[part]
            groups[-1][1] += text
        for k, (part_unit, code) in enumerate(groups):
            if part_unit is not None:
                if not part_unit.before:
                    raise BuildError(f'{part_unit.where}: part "{part_unit.name}" has no prose')
                heading = f"### `{part_unit.name}`"
                heading += f": {part_unit.heading}" if part_unit.heading else ""
                if k > 0 or cells[-1]["cell_type"] != "markdown":
                    cells.append(md(f"{heading}\n\n{part_unit.before}", i))
                else:
                    cells[-1]["source"] += f"\n\n{heading}\n\n{part_unit.before}"
            cells.append(script_cell(code, name))
            for kind, text in (part_unit.after if part_unit is not None else []):
                cells.append(md(text, i) if kind == "md" else notebook_cell(text))
        for kind, text in unit.after:
            cells.append(md(text, i) if kind == "md" else notebook_cell(text))
    cells += ending_cells(i)
    if TRY_IT_HEADING not in units or not units[TRY_IT_HEADING].before:
        raise BuildError(f'{rel}: no "## {TRY_IT_HEADING}: ..." prose for the try-it cell')
    cells += try_it_cells(i, units[TRY_IT_HEADING])
    for n, cell in enumerate(cells):
        cell["id"] = f"stage{i}-cell{n:03d}"
    return cells, title


def code_text(cells):
    """The code cells' sources, in order, with repo.PLACEHOLDER for the repository's name: what
    a notebook's outputs depend on (tools/repo.py --set rewrites links in place)."""
    code = "\0".join(cell["source"] for cell in cells if cell["cell_type"] == "code")
    return repo.replace_repo(code, repo.GITHUB_REPO, repo.PLACEHOLDER)


def source_hash(i, cells, root):
    """SHA-256 of what the outputs of stage i depend on: this tool's version, the notebook's
    code cells, and the previous stage's code cells (the last cell quotes the previous
    notebook's outputs). Prose is left out: rewording it keeps the outputs."""
    h = hashlib.sha256()
    h.update(f"{TOOL_VERSION}\0".encode())
    h.update(code_text(cells).encode())
    if i > 0:
        h.update(b"\0" + code_text(build_cells(i - 1, root)[0]).encode())
    return h.hexdigest()


def build_notebook(i, root):
    """Stage i's notebook without outputs; its source hash leaves the measured figures out."""
    import nbformat
    cells, title = build_cells(i, root)
    digest = source_hash(i, cells, root)
    missing = set()
    for cell in cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = resolve_figures(cell["source"], f"{PROSE_DIR}/{stem(i)}.md", missing)
    for key in sorted(missing):
        print(f"warning: {notebook_name(i)}: figure {key} is not measured yet", file=sys.stderr)
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = 5
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "microgpt": {
            "generated_by": TOOL,
            "stage": i,
            "script": stages.STAGE_FILES[i],
            "prose": f"{PROSE_DIR}/{stem(i)}.md",
            "source_sha256": digest,
            "outputs_from_sha256": None,
        },
    }
    nb.cells = [nbformat.from_dict(cell) for cell in cells]
    return nb


def cells_without_outputs(nb):
    out = []
    for cell in nb["cells"]:
        cell = dict(cell)
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
        out.append(json.loads(json.dumps(cell, sort_keys=True)))
    return out


def dumps(nb):
    import nbformat
    return nbformat.writes(nb) + "\n"


def readme_text(root):
    lines = [
        "<!-- generated by tools/make_notebooks.py; do not edit, rerun the tool -->",
        "# Companion notebooks",
        "",
        "One notebook per stage: the stage script itself, unchanged and complete, split into cells",
        "with an explanation before each step and pictures of what happens. Each opens in Google",
        "Colab with nothing else (a setup cell downloads `data/names.txt` when the notebook runs",
        "outside this repository) and runs locally with Python 3.11+ and matplotlib. They are",
        "committed with the outputs of a full run at the default settings, so GitHub shows the",
        "plots and samples without running anything.",
        "",
        "| stage | notebook | what it teaches |",
        "|---|---|---|",
    ]
    for i in range(len(stages.STAGE_FILES)):
        _, _, _, teaches = read_prose(i, root)
        badge = f"[![Open In Colab]({repo.COLAB_BADGE})]({colab_link(i)})"
        lines.append(f"| {i} | [{notebook_name(i)}]({notebook_name(i)}) {badge} | {teaches} |")
    epilogue = repo.colab_url(f"{NOTEBOOK_DIR}/epilogue.ipynb")
    lines += [
        f"| after 5 | [epilogue.ipynb](epilogue.ipynb) [![Open In Colab]({repo.COLAB_BADGE})]"
        f"({epilogue}) | the same GPT in PyTorch tensors, what tensors buy, and how production "
        "LLMs differ (built by `tools/epilogue.py`) |",
        "",
        "Beside every notebook: the [glossary](GLOSSARY.md), each name and idea of the course",
        "in one or two sentences with the stage that introduces it, and [the model",
        "diagrams](MODELS.md), the data flow of the model at each stage with the shape of every",
        "vector.",
        "",
        "## How they are made",
        "",
        f"`python {TOOL}` builds every notebook from its script (`trainN_*.py`) and its prose",
        "(`prose/trainN_*.md`, Markdown whose `## <section>` headings name the script's",
        "`# === <section> ===` sections); edit those, never the `.ipynb` files. `--execute` also",
        "runs each notebook at the default settings in a fresh kernel (a few minutes in all on",
        "two cores) and stores the outputs with the SHA-256 of the code they came from (prose",
        "is left out: rewording it keeps the outputs); `--check` (run by",
        "`tests/test_notebooks.py`) fails when a notebook differs from a fresh build or its",
        'outputs are older than its code. Cells marked `# notebook-only` (setup, plots, "try',
        'it") are not in the script; the other code cells, joined, are the script byte for byte.',
        "",
        "The GitHub owner/name in the badges and download URLs lives in `tools/repo.py` only. A",
        "fork runs `python tools/repo.py --set owner/name` (or `--from-git`), which rewrites every",
        "link in place; the name is not part of the notebooks' source hash, so outputs stay.",
        "",
        "`exercises/` holds the student handouts, made by a different tool; see its README.",
    ]
    return "\n".join(lines) + "\n"


# --- execution --------------------------------------------------------------------------------

def execute(nb, cwd, overrides=None, timeout=1800, try_steps=None):
    """Run nb top to bottom in a fresh python3 kernel with `cwd` as working directory. overrides
    maps a setting (e.g. 'num_steps') to the text of a new value, written into the script's
    settings cell as a learner would; try_steps replaces the try-it cell's TRY_STEPS and the
    steps of stage 3's attention demo (tests).
    Returns a new nb."""
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    settings = [cell for cell in nb.cells
                if cell.metadata.get("microgpt", {}).get("section") == "settings"]
    for variable, value in (overrides or {}).items():
        pattern = re.compile(rf"^{re.escape(variable)} = .*$", re.M)
        if not settings or not pattern.search(settings[0].source):
            raise BuildError(f'the settings cell has no "{variable} = ..." line')
        settings[0].source = pattern.sub(f"{variable} = {value}", settings[0].source, count=1)
    if try_steps is not None:   # the try-it runs and stage 3's demo, shortened
        for cell in nb.cells:
            if cell.source.startswith("# notebook-only: try it: "):
                cell.source = cell.source.replace(f"'--num_steps={TRY_STEPS}'",
                                                  f"'--num_steps={try_steps}'")
            if cell.source.startswith("# notebook-only: attention at work"):
                demo_steps = import_experiments().DEMO_STEPS
                cell.source = cell.source.replace(f"'num_steps': {demo_steps}",
                                                  f"'num_steps': {try_steps}")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            coalesce_streams=True, resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


def clean_outputs(nb, metadata):
    """Drop what changes from run to run besides the script's own timings."""
    nb.metadata = copy.deepcopy(metadata)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop("execution", None)


# --- main -------------------------------------------------------------------------------------

def existing(path):
    import nbformat
    try:
        return nbformat.read(str(path), as_version=4)
    except (OSError, ValueError):
        return None


def with_outputs_of(nb, old):
    """nb with the outputs of `old` if they came from nb's sources (the same source hash: only a
    quoted figure may differ, and figures do not change what the code prints); else None."""
    digest = nb.metadata["microgpt"]["source_sha256"]
    if old is None or old.metadata.get("microgpt", {}).get("outputs_from_sha256") != digest:
        return None
    old_code = {cell.id: cell for cell in old.cells if cell.cell_type == "code"}
    new_code = [cell for cell in nb.cells if cell.cell_type == "code"]
    if [cell.id for cell in new_code] != list(old_code) or any(
            cell.source != old_code[cell.id].source for cell in new_code):
        return None
    kept = copy.deepcopy(nb)
    kept.metadata["microgpt"]["outputs_from_sha256"] = digest
    for cell in kept.cells:
        if cell.cell_type == "code":
            cell.outputs = copy.deepcopy(old_code[cell.id].outputs)
            cell.execution_count = old_code[cell.id].execution_count
    return kept


def check(root, which):
    problems = []
    for i in which:
        nb = build_notebook(i, root)
        path = Path(root) / NOTEBOOK_DIR / notebook_name(i)
        old = existing(path)
        if old is None:
            problems.append(f"{path.name}: missing")
            continue
        meta = nb.metadata["microgpt"]
        fresh_outputs = old.metadata.get("microgpt", {}) == {
            **meta, "outputs_from_sha256": meta["source_sha256"]}
        if cells_without_outputs(old) != cells_without_outputs(nb):
            why = " (a quoted figure changed)" if with_outputs_of(nb, old) is not None else ""
            problems.append(f"{path.name}: cells differ from a fresh build{why}")
        if not fresh_outputs:
            problems.append(f"{path.name}: outputs are missing or come from older sources")
        elif path.read_text(encoding="utf-8") != dumps(old):
            problems.append(f"{path.name}: not written by this tool (formatting differs)")
    readme = Path(root) / NOTEBOOK_DIR / "README.md"
    if not readme.is_file() or readme.read_text(encoding="utf-8") != readme_text(root):
        problems.append("README.md: differs from a fresh build")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify, write nothing")
    parser.add_argument("--execute", action="store_true", help="run and store the outputs")
    parser.add_argument("--force", action="store_true",
                        help="with --execute: run even the notebooks whose outputs are fresh")
    parser.add_argument("--stages", type=int, nargs="+", choices=range(6), default=range(6),
                        metavar="N", help="only these stages (default: all)")
    args = parser.parse_args()
    root = stages.ROOT
    try:
        if args.check:
            problems = check(root, args.stages)
            for problem in problems:
                print(f"{NOTEBOOK_DIR}/{problem}", file=sys.stderr)
            if problems:
                sys.exit(f"error: notebooks are stale: run python {TOOL}"
                         + (" --execute" if any("outputs" in p for p in problems) else ""))
            print("notebooks are up to date")
            return
        out_dir = Path(root) / NOTEBOOK_DIR
        out_dir.mkdir(exist_ok=True)
        for i in sorted(args.stages):
            nb = build_notebook(i, root)
            path = out_dir / notebook_name(i)
            digest = nb.metadata["microgpt"]["source_sha256"]
            old = existing(path)
            kept = with_outputs_of(nb, old)
            if kept is not None and not args.force:
                note = ("unchanged, outputs kept" if dumps(kept) == dumps(old) else
                        "measured figures updated, outputs kept")
                nb = kept
            elif args.execute:
                env_backend = os.environ.pop("MPLBACKEND", None)   # inline figures, not Agg
                start = time.perf_counter()
                try:
                    ran = execute(nb, out_dir)
                finally:
                    if env_backend is not None:
                        os.environ["MPLBACKEND"] = env_backend
                seconds = time.perf_counter() - start
                metadata = copy.deepcopy(nb.metadata)
                metadata["microgpt"]["outputs_from_sha256"] = digest
                clean_outputs(ran, metadata)
                nb = ran
                note = f"executed in {seconds:.0f} s"
            else:
                note = "built without outputs (run with --execute to add them)"
            text = dumps(nb)
            path.write_text(text, encoding="utf-8")
            figures = sum(1 for c in nb.cells for o in c.get("outputs", [])
                          if "image/png" in o.get("data", {}))
            print(f"{path.relative_to(root)}: {len(nb.cells)} cells, {figures} figures, "
                  f"{len(text.encode()) / 1024:.0f} KB, {note}")
        (out_dir / "README.md").write_text(readme_text(root), encoding="utf-8")
    except BuildError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
