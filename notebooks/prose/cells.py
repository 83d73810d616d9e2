# ruff: noqa
# The generated code cells of the companion notebooks (tools/make_notebooks.py) and of the
# epilogue (tools/epilogue.py). Each part below, cut at its `part:` line, is one cell's code;
# {{name}} is a slot the tool fills (a slot alone on its line: lines, or none). The cells run in
# a notebook, after the cells before them, so names they use are defined there. Their text is
# in the notebooks' source hash: a change here calls for `make_notebooks.py --execute`.

# --- part: setup ---
# notebook-only: setup. Inside a copy of the repository this finds data/names.txt and
# the script; anywhere else (Colab) it downloads them: the "try it" cell at the end runs
# the script as a program. The script finds its data through __file__, which a notebook
# does not have, so it is defined here.
import json
import os
import re
import urllib.request

GITHUB_REPO = '{{repo}}'   # a fork runs tools/repo.py --set owner/name to change it
RAW_URL = f'https://raw.githubusercontent.com/{GITHUB_REPO}/{{branch}}/'
SCRIPT = '{{script}}'
NEEDED = {{needed}}


def find_repo_root():
    """The nearest folder, from here upwards, that holds every file of NEEDED."""
    folder = os.getcwd()
    while True:
        if all(os.path.isfile(os.path.join(folder, name)) for name in NEEDED):
            return folder
        if os.path.dirname(folder) == folder:
            return None
        folder = os.path.dirname(folder)


repo_root = find_repo_root()
if repo_root is not None:
    print(', '.join(NEEDED) + ': from this copy of the repository')
else:
    repo_root = os.getcwd()
    for name in NEEDED:
        if not os.path.isfile(name):
            os.makedirs(os.path.dirname(name) or '.', exist_ok=True)
            urllib.request.urlretrieve(RAW_URL + name, name)
    print(', '.join(NEEDED) + f': downloaded from {RAW_URL}')
__file__ = os.path.join(repo_root, SCRIPT)


# --- part: printout ---
def stage_printout(notebook, cells='script'):
    """What the script cells (or the notebook-only cells) of a committed notebook printed
    in its last full run at the default settings: read from this repository, or from
    GitHub; None if neither works."""
    path = os.path.join(repo_root, 'notebooks', notebook)
    try:
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                nb = json.load(f)
        else:
            with urllib.request.urlopen(RAW_URL + 'notebooks/' + notebook, timeout=30) as f:
                nb = json.load(f)
    except (OSError, ValueError):
        return None
    text = ''
    for cell in nb['cells']:
        if cell['metadata'].get('microgpt', {}).get('source') == cells:
            for output in cell.get('outputs', []):
                if output.get('name') == 'stdout':
                    text += ''.join(output['text'])
    return text


# --- part: result_first ---
# notebook-only: this stage's result, the baseline the neural stages are measured against
print(f'stage {{stage}} ({{concept}}), this run: val loss {val_loss:.4f} nats, '
      f'about {math.exp(val_loss):.1f} effective choices per letter')
print(f'a uniform guess over the {vocab_size} tokens: '
      f'{math.log(vocab_size):.4f} nats, {vocab_size} choices')

# --- part: result ---
# notebook-only: this stage's result next to stage {{before}}'s
print(f'stage {{stage}} ({{concept}}), this run: val loss {val_loss:.4f} nats, '
      f'about {math.exp(val_loss):.1f} effective choices per letter')
previous = stage_printout('{{previous}}') or ''
found = re.search(r'val loss: ([0-9.]+)', previous)
if found is None:
    print('stage {{before}}: no results (not executed yet, or no copy of the repository and no network)')
else:
    previous_val = float(found.group(1))
    previous_samples = re.findall(r'sample \d+: (.*)', previous)
    print(f'stage {{before}} ({{before_concept}}), committed notebook, default settings: '
          f'val loss {previous_val:.4f} nats')
    print(f'difference: {val_loss - previous_val:+.4f} nats')
    print('stage {{before}} samples: ' + ', '.join(previous_samples))
    {{temperature_one}}
# --- part: temperature_one ---
    rng = random.Random(0)   # its own generator: the script's state is untouched
    at_one = []
    for _ in previous_samples:
        token_id = BOS
        sample = []
        for _ in range(block_size):
            probs = softmax(gpt(token_id))   # temperature 1, as stage 0 samples
            token_id = rng.choices(range(vocab_size), weights=probs)[0]
            if token_id == BOS:
                break
            sample.append(uchars[token_id])
        at_one.append(''.join(sample))
    print('stage 1 samples at temperature 1: ' + ', '.join(at_one))

# --- part: try_side_by_side ---
# notebook-only: try it: {{title}}
import subprocess
import sys

DATA = os.path.join(repo_root, 'data', 'names.txt')
SETTINGS = [{{settings}}, f'--data_path={DATA}']   # both runs


def run(path):
    """Run a stage script as a program: its progress lines and val loss."""
    result = subprocess.run([sys.executable, path, *SETTINGS], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    steps = re.findall(r'^step +(\d+) / \d+ \| loss ([0-9.]+)', result.stdout, re.M)
    val = float(re.search(r'^val loss: ([0-9.]+)', result.stdout, re.M).group(1))
    return steps, val


steps1, val1 = run(os.path.join(repo_root, '{{other_script}}'))
steps2, val2 = run(__file__)
print('step   stage 1 loss   stage 2 loss')
for (step, loss1), (_, loss2) in zip(steps1, steps2):
    print(f'{step:>4}   {loss1:>12}   {loss2:>12}')
print(f'val loss: stage 1 {val1:.4f}, stage 2 {val2:.4f}, '
      f'difference {val2 - val1:+.4f}')

# --- part: try_copy ---
# notebook-only: try it: {{title}}
import subprocess
import sys
import tempfile

DATA = os.path.join(repo_root, 'data', 'names.txt')
SETTINGS = [{{settings}}, f'--data_path={DATA}']   # both runs
{{copy_settings}}
EDITS = [   # (old, new): each old text occurs once in the script
    {{edits}}
]


def val_loss_of(path, settings):
    """Run a stage script as a program; the val loss it prints."""
    result = subprocess.run([sys.executable, path, *settings], capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    return float(re.search(r'^val loss: ([0-9.]+)', result.stdout, re.M).group(1))


with open(__file__, encoding='utf-8') as f:
    source = f.read()
print('the changed copy:')
for old, new in EDITS:
    assert source.count(old) == 1, 'each old text must occur once in the script'
    source = source.replace(old, new)
    print('-', old.strip())
    print('+', new.strip())
copy_path = os.path.join(tempfile.mkdtemp(), SCRIPT)
with open(copy_path, 'w', encoding='utf-8') as f:
    f.write(source)
{{copy_run}}
print(f'{SCRIPT}: val loss {val_loss_of(__file__, SETTINGS):.4f}')
print(f'changed copy: val loss {val_loss_of(copy_path, copy_settings):.4f}')

# --- part: copy_run_plain ---
copy_settings = SETTINGS
# --- part: copy_run_settings ---
print('  and', ' '.join(COPY_SETTINGS))
copy_settings = SETTINGS + COPY_SETTINGS

# --- part: epilogue_setup ---
# setup: inside a copy of the repository this finds data/names.txt and train5_adam.py;
# anywhere else (Colab) it downloads them. Colab has PyTorch; nothing else is needed.
import os
import urllib.request

GITHUB_REPO = '{{repo}}'   # a fork runs tools/repo.py --set owner/name to change it
RAW_URL = f'https://raw.githubusercontent.com/{GITHUB_REPO}/{{branch}}/'
NEEDED = ['data/names.txt', '{{script}}']

repo_root = os.getcwd()
while not all(os.path.isfile(os.path.join(repo_root, name)) for name in NEEDED):
    if os.path.dirname(repo_root) == repo_root:   # not in a copy: download
        repo_root = os.getcwd()
        for name in NEEDED:
            os.makedirs(os.path.dirname(name) or '.', exist_ok=True)
            urllib.request.urlretrieve(RAW_URL + name, name)
        break
    repo_root = os.path.dirname(repo_root)
STAGE5 = os.path.join(repo_root, '{{script}}')
DATA = os.path.join(repo_root, 'data', 'names.txt')
print('stage 5 and the names from', repo_root)
