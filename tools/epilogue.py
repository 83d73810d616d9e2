"""Build, measure and check the epilogue notebook notebooks/epilogue.ipynb: stage 5's GPT in
PyTorch, what tensors buy, from here to production, and the learner's questions.

It reads notebooks/prose/epilogue.md: Markdown, and ```python blocks that become the code
cells in order. A block whose first line is `# settings` is the settings cell; blocks whose
first line starts with `# shared:` hold the code that the notebook, this tool and
tests/test_epilogue.py all run (the tensor GPT, training, sampling, byte-pair encoding), so one
piece of code serves each job. Prose quotes figures, never types them: {{exp:KEY}} is a figure of
tools/experiments.py (as in tools/make_notebooks.py) and {{epi:KEY}} one of
benchmarks/epilogue.json, which --measure writes by running the shared cells at the notebook's
settings (3-4 minutes on 2 busy cores), with the SHA-256 of the code it ran.

  python tools/epilogue.py             build; keeps the outputs if the sources did not change
  python tools/epilogue.py --measure   measure, write benchmarks/epilogue.json, then build
  python tools/epilogue.py --execute   build and run the notebook in a fresh kernel (stores the
                                       outputs and the time it took, a figure the prose quotes)
  python tools/epilogue.py --check     fail if the notebook differs from a fresh build, its
                                       outputs or the measurements come from older sources
Needs nbformat; --execute nbclient, ipykernel, matplotlib and torch; --measure torch.
"""
import argparse
import ast
import copy
import hashlib
import json
import math
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_notebooks  # noqa: E402  (its {{exp:KEY}} figures and its notebook format)
import repo  # noqa: E402
import stages  # noqa: E402

TOOL = 'tools/epilogue.py'
TOOL_VERSION = '1'   # bump when a change here alters what an executed notebook would show
PROSE = 'notebooks/prose/epilogue.md'
NOTEBOOK = 'notebooks/epilogue.ipynb'
RESULTS = 'benchmarks/epilogue.json'
STAGE5 = stages.STAGE_FILES[5]
FIGURE = re.compile(r'\{\{epi:([^{}]+)\}\}')
FENCE = re.compile(r'^```(\w*)\s*$')
SHARED = '# shared:'
SETTINGS = '# settings'
MEASURE_STEPS = 1000   # steps of each version that --measure times


class BuildError(Exception):
    """A prose file that cannot become the notebook, or a figure not measured; one line."""


# --- prose ------------------------------------------------------------------------------------

def parse(text):
    """-> (title, teaches, [(kind, text)]) with kind 'md' or 'code', in order. Markdown is cut
    into a new cell at each ## or ### heading."""
    lines = stages.split_lines(text)
    if not lines or not lines[0].startswith('# '):
        raise BuildError(f'{PROSE}: the first line must be the # title')
    title = lines[0][2:].strip()
    cells = []
    md_lines = []
    code = None
    teaches = None

    def flush_md():
        body = ''.join(md_lines).strip()
        if body:
            cells.append(('md', body))
        md_lines.clear()

    for number, line in enumerate(lines[1:], 2):
        if code is not None:
            if FENCE.match(line):
                cells.append(('code', ''.join(code).rstrip('\n')))
                code = None
            else:
                code.append(line)
        elif FENCE.match(line):
            if FENCE.match(line).group(1) != 'python':
                raise BuildError(f'{PROSE}:{number}: a code block must be ```python')
            flush_md()
            code = []
        elif line.startswith('Teaches: ') and teaches is None:
            teaches = line[len('Teaches: '):].strip()
        else:
            if re.match(r'^#{2,3} ', line):
                flush_md()
            md_lines.append(line)
    if code is not None:
        raise BuildError(f'{PROSE}: a ```python block is not closed')
    flush_md()
    if teaches is None:
        raise BuildError(f'{PROSE}: needs a "Teaches: ..." line under the title')
    return title, teaches, cells


def read_prose(root):
    return parse((Path(root) / PROSE).read_text(encoding='utf-8'))


def code_cells(root, which):
    """The code cells of the prose that start with `which` ('# shared:' or '# settings')."""
    return [text for kind, text in read_prose(root)[2] if kind == 'code'
            and text.startswith(which)]


def shared_code(root=stages.ROOT):
    """The settings cell and the shared cells, joined: what the tool and the tests run."""
    return '\n\n\n'.join(code_cells(root, SETTINGS) + code_cells(root, SHARED)) + '\n'


def shared_namespace(root=stages.ROOT):
    """A namespace with the settings and every shared definition of the notebook, and STAGE5
    and DATA as its setup cell defines them."""
    ns = {'__name__': 'epilogue', 'STAGE5': str(Path(root) / STAGE5),
          'DATA': str(Path(root) / 'data' / 'names.txt')}
    exec(compile(shared_code(root), PROSE, 'exec'), ns)
    return ns


def script_code(text):
    """What a script computes: its syntax tree without comments and docstrings, so that editing
    one of those in stage 5 leaves the measurements and outputs fresh."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, 'body', None)
        first = body[0] if isinstance(body, list) and body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def code_sha256(root):
    """What the measurements depend on: the settings and shared cells, stage 5's code, and
    the measuring function of this tool."""
    h = hashlib.sha256()
    h.update(shared_code(root).encode() + b'\0')
    h.update(script_code(stages.read_stage(5, root)).encode() + b'\0')
    h.update(measure_source().encode())
    return h.hexdigest()


def measure_source():
    import inspect
    return inspect.getsource(measure)


# --- cells ------------------------------------------------------------------------------------

def setup_source():
    return '\n'.join([
        '# setup: inside a copy of the repository this finds data/names.txt and train5_adam.py;',
        '# anywhere else (Colab) it downloads them. Colab has PyTorch; nothing else is needed.',
        'import os',
        'import urllib.request',
        '',
        f"GITHUB_REPO = '{repo.GITHUB_REPO}'   # from tools/repo.py: a fork edits it there",
        f"RAW_URL = f'https://raw.githubusercontent.com/{{GITHUB_REPO}}/{repo.GITHUB_BRANCH}/'",
        f"NEEDED = ['data/names.txt', '{STAGE5}']",
        '',
        'repo_root = os.getcwd()',
        'while not all(os.path.isfile(os.path.join(repo_root, name)) for name in NEEDED):',
        '    if os.path.dirname(repo_root) == repo_root:   # not in a copy: download',
        '        repo_root = os.getcwd()',
        '        for name in NEEDED:',
        "            os.makedirs(os.path.dirname(name) or '.', exist_ok=True)",
        '            urllib.request.urlretrieve(RAW_URL + name, name)',
        '        break',
        '    repo_root = os.path.dirname(repo_root)',
        f"STAGE5 = os.path.join(repo_root, '{STAGE5}')",
        "DATA = os.path.join(repo_root, 'data', 'names.txt')",
        "print('stage 5 and the names from', repo_root)",
    ])


def header(title, root):
    _, teaches, _ = read_prose(root)
    colab = repo.colab_url(NOTEBOOK)
    script_url = make_notebooks.github_url(STAGE5)
    return (f'# {title}\n\n[![Open In Colab]({repo.COLAB_BADGE})]({colab})\n\n'
            f'*Generated by `{TOOL}` from `{PROSE}`: edit that, not this notebook. It runs '
            f'[`{STAGE5}`]({script_url}) itself, unchanged.*\n\n**Teaches:** {teaches}')


def build_cells(root):
    title, _, parsed = read_prose(root)
    cells = [make_notebooks.md(header(title, root), None)]
    first_code = next(n for n, (kind, _) in enumerate(parsed) if kind == 'code')
    for n, (kind, text) in enumerate(parsed):
        if n == first_code:
            cells.append(make_notebooks.notebook_cell(setup_source()))
        cells.append(make_notebooks.md(text, None) if kind == 'md'
                     else make_notebooks.notebook_cell(text))
    for n, cell in enumerate(cells):
        cell['metadata'] = {'microgpt': {'source': 'epilogue'}}
        cell['id'] = f'epilogue-cell{n:03d}'
    return cells


def source_hash(cells, root):
    """SHA-256 of what the outputs depend on: this tool's version, stage 5's code and the code
    cells (with repo.PLACEHOLDER for the repository's name). Prose edits keep the outputs."""
    code = [cell['source'] for cell in cells if cell['cell_type'] == 'code']
    h = hashlib.sha256()
    h.update(f'{TOOL_VERSION}\0'.encode())
    h.update(script_code(stages.read_stage(5, root)).encode() + b'\0')
    h.update(repo.replace_repo(json.dumps(code), repo.GITHUB_REPO, repo.PLACEHOLDER).encode())
    return h.hexdigest()


# --- figures ----------------------------------------------------------------------------------

def load_results(root):
    path = Path(root) / RESULTS
    return json.loads(path.read_text(encoding='utf-8')) if path.is_file() else None


def resolve(text, results, missing):
    """text with each {{epi:KEY}} and {{exp:KEY}} replaced by its figure."""
    quotes = (results or {}).get('quotes', {})

    def replace(match):
        key = match.group(1).strip()
        if key in quotes:
            return quotes[key]
        missing.add(key)
        return f'(not measured yet: {key})'
    text = FIGURE.sub(replace, text)
    return make_notebooks.resolve_figures(text, PROSE, set())


def build_notebook(root):
    import nbformat
    cells = build_cells(root)
    digest = source_hash(cells, root)
    results = load_results(root)
    missing = set()
    for cell in cells:
        if cell['cell_type'] == 'markdown':
            cell['source'] = resolve(cell['source'], results, missing)
    nb = nbformat.v4.new_notebook()
    nb.nbformat_minor = 5
    nb.metadata = {
        'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
        'language_info': {'name': 'python'},
        'microgpt': {'generated_by': TOOL, 'prose': PROSE, 'source_sha256': digest,
                     'outputs_from_sha256': None},
    }
    nb.cells = [nbformat.from_dict(cell) for cell in cells]
    return nb, missing


# --- measurements -----------------------------------------------------------------------------

def count_nodes(loss):
    """Nodes of a Value graph: what backward() walks."""
    seen = set()
    stack = [loss]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node._children)
    return len(seen)


def measure(root):
    """Run the shared code at the notebook's settings: every figure the prose quotes."""
    import torch
    ns = shared_namespace(root)
    settings = re.findall(r'^(\w+) = ', code_cells(root, SETTINGS)[0], re.M)
    out = {'settings': {name: ns[name] for name in settings}}
    # 1. stage 5 and its tensor twin, 1,000 steps each; stage 5 then evaluates and samples
    print('measuring: stage 5 and its tensor twin', file=sys.stderr)
    both = ns['train_both'](ns['STAGE5'], ns['DATA'], MEASURE_STEPS)
    s5 = both['stage5']
    diffs = [abs(a - b) for a, b in zip(both['scalar_losses'], both['tensor_losses'])]
    printed = ns['run_section'](s5, both['sections'], 'evaluation')
    printed += ns['run_section'](s5, both['sections'], 'sampling')
    nodes = []
    fresh, _ = ns['load_stage5'](ns['STAGE5'], ns['DATA'])
    for step in range(20):
        nodes.append(count_nodes(fresh['doc_loss'](fresh['encode'](fresh['train_docs'][step]))))
    batched = ns['time_batched'](fresh, MEASURE_STEPS, ns['big_batch_size'])
    out['stage5'] = {
        'num_steps': MEASURE_STEPS, 'num_params': len(s5['params']),
        'num_train': len(s5['train_docs']), 'num_val': len(s5['val_docs']),
        'val_loss': float(re.search(r'val loss: ([0-9.]+)', printed).group(1)),
        'samples': re.findall(r'sample \d+: (.*)', printed)}
    out['equal'] = {'steps': MEASURE_STEPS, 'max_difference': max(diffs)}
    out['timing'] = {'steps': MEASURE_STEPS, 'scalar_s_per_step': both['scalar_s_per_step'],
                     'tensor_s_per_step': both['tensor_s_per_step'],
                     'batch_size': ns['big_batch_size'], 'batched_s_per_step': batched,
                     'nodes_per_step': sum(nodes) / len(nodes),
                     'torch': torch.__version__, 'threads': torch.get_num_threads(),
                     'load_avg_1min': os.getloadavg()[0]}
    # 2. the bigger model
    print('measuring: the bigger model', file=sys.stderr)
    stage5 = ns['load_stage5'](ns['STAGE5'], ns['DATA'])[0]
    big, losses, seconds, val = ns['train_big'](stage5, ns['big_n_embd'], ns['big_n_layer'],
                                                ns['big_batch_size'], ns['big_num_steps'],
                                                ns['big_learning_rate'])
    samples = ns['sample'](big, ns['big_num_samples'], stage5['temperature'], stage5['n_head'],
                           stage5['block_size'], stage5['BOS'], stage5['uchars'], seed=0)
    train_names = set(stage5['train_docs'])
    positions = [min(stage5['block_size'], len(doc) + 1) for doc in stage5['train_docs']]
    out['big'] = {'n_embd': ns['big_n_embd'], 'n_layer': ns['big_n_layer'],
                  'batch_size': ns['big_batch_size'], 'num_steps': ns['big_num_steps'],
                  'num_params': sum(w.numel() for w in big.values()),
                  'train_seconds': seconds, 'val_loss': val,
                  'tokens_per_name': sum(positions) / len(positions),
                  'samples': samples[:20], 'num_samples': len(samples),
                  'in_train': sum(name in train_names for name in samples)}
    # 3. byte-pair encoding and fine-tuning
    print('measuring: byte-pair encoding and fine-tuning', file=sys.stderr)
    merges, _ = ns['learn_bpe'](stage5['train_docs'], ns['num_merges'])
    chars = sum(len(doc) for doc in stage5['val_docs'])
    tokens = sum(len(ns['bpe_encode'](doc, merges)) for doc in stage5['val_docs'])
    out['bpe'] = {'num_merges': len(merges), 'chars': chars, 'tokens': tokens,
                  'first_merges': [[a, b, count] for (a, b), count in merges[:10]]}
    num_docs, (before, after), tuned = ns['finetune'](stage5, big, ns['finetune_prefix'],
                                                      ns['finetune_steps'])
    out['finetune'] = {'prefix': ns['finetune_prefix'], 'steps': ns['finetune_steps'],
                       'num_docs': num_docs, 'before': before, 'after': after,
                       'samples': tuned}
    return out


def quotes_of(m):
    """{key: text} of every figure the prose may quote, from the measurements m."""
    t = m['timing']
    big = m['big']
    s5 = m['stage5']
    scalar_ms = 1000 * t['scalar_s_per_step']
    tensor_ms = 1000 * t['tensor_s_per_step']
    batched_ms = 1000 * t['batched_s_per_step']
    per_name = batched_ms / t['batch_size']
    names_seen = big['batch_size'] * big['num_steps']
    # the scalar engine's time per name grows about in proportion to the parameters
    scalar_hours = (t['scalar_s_per_step'] * names_seen * big['num_params'] / s5['num_params']
                    / 3600)
    q = {
        'stage5.num_params': f"{s5['num_params']:,}",
        'stage5.num_train': f"{s5['num_train']:,}",
        'stage5.val_loss': f"{s5['val_loss']:.3f}",
        'stage5.samples': ', '.join(s5['samples']),
        'equal.max_difference_1000': f"{m['equal']['max_difference']:.1e}",
        'timing.scalar_ms_per_step': f'{scalar_ms:.1f}',
        'timing.tensor_ms_per_step': f'{tensor_ms:.2f}',
        'timing.batched_ms_per_step': f'{batched_ms:.2f}',
        'timing.batched_ms_per_name': f'{per_name:.3f}',
        'timing.batch_size': str(t['batch_size']),
        'timing.batched_over_one': f'{batched_ms / tensor_ms:.1f}',
        'timing.speedup_one_name': f'{scalar_ms / tensor_ms:.0f}',
        'timing.speedup_per_name': f'{scalar_ms / per_name:,.0f}',
        'timing.nodes_per_step': f"{t['nodes_per_step']:,.0f}",
        'timing.load': f"{t['load_avg_1min']:.1f}",
        'big.n_embd': str(big['n_embd']),
        'big.n_layer': str(big['n_layer']),
        'big.batch_size': str(big['batch_size']),
        'big.num_steps': f"{big['num_steps']:,}",
        'big.num_params': f"{big['num_params']:,}",
        'big.names_seen': f'{names_seen:,}',
        'big.tokens_seen': f"{names_seen * big['tokens_per_name']:,.0f}",
        'big.train_seconds': f"{big['train_seconds']:.0f}",
        'big.scalar_hours': f'{scalar_hours:,.0f}',
        'big.val_loss': f"{big['val_loss']:.3f}",
        'big.gain': f"{s5['val_loss'] - big['val_loss']:.2f}",
        'big.copied': f"{big['in_train'] / big['num_samples']:.0%} of {big['num_samples']} "
                      'samples are training names',
        'big.samples': ', '.join(big['samples']),
        'uniform_loss': f"{math.log(27):.3f}",
        'choices.uniform': '27',
        'choices.stage5': f"{math.exp(s5['val_loss']):.1f}",
        'choices.big': f"{math.exp(big['val_loss']):.1f}",
        'bpe.num_merges': str(m['bpe']['num_merges']),
        'bpe.first_merges': ', '.join(f'{a}+{b}' for a, b, _ in m['bpe']['first_merges'][:5]),
        'bpe.chars': f"{m['bpe']['chars']:,}",
        'bpe.tokens': f"{m['bpe']['tokens']:,}",
        'bpe.ratio': f"{m['bpe']['tokens'] / m['bpe']['chars']:.0%}",
        'finetune.prefix': m['finetune']['prefix'],
        'finetune.steps': str(m['finetune']['steps']),
        'finetune.num_docs': f"{m['finetune']['num_docs']:,}",
        'finetune.before': f"{m['finetune']['before']:.0%}",
        'finetune.after': f"{m['finetune']['after']:.0%}",
    }
    if 'notebook' in m:
        q['notebook_seconds'] = f"{m['notebook']['seconds']:.0f}"
    return q


def write_results(root, measured):
    measured['quotes'] = quotes_of(measured)
    text = json.dumps(measured, indent=1, sort_keys=True) + '\n'
    (Path(root) / RESULTS).write_text(text, encoding='utf-8')


# --- execution, build, check ------------------------------------------------------------------

def execute(nb, cwd, overrides=None, timeout=1800):
    """Run nb in a fresh python3 kernel in `cwd`; overrides {setting: value text} edit the
    settings cell as a learner would (the tests run it small). Returns a new nb."""
    from nbclient import NotebookClient
    nb = copy.deepcopy(nb)
    settings = [cell for cell in nb.cells if cell.source.startswith(SETTINGS)]
    for name, value in (overrides or {}).items():
        pattern = re.compile(rf'^{re.escape(name)} = .*$', re.M)
        if not settings or not pattern.search(settings[0].source):
            raise BuildError(f'the settings cell has no "{name} = ..." line')
        settings[0].source = pattern.sub(f'{name} = {value}', settings[0].source, count=1)
    client = NotebookClient(nb, timeout=timeout, kernel_name='python3', record_timing=False,
                            coalesce_streams=True, resources={'metadata': {'path': str(cwd)}})
    client.execute()
    return nb


def with_outputs_of(nb, old):
    """nb with old's outputs if they came from nb's sources, else None."""
    digest = nb.metadata['microgpt']['source_sha256']
    if old is None or old.metadata.get('microgpt', {}).get('outputs_from_sha256') != digest:
        return None
    kept = copy.deepcopy(nb)
    kept.metadata['microgpt']['outputs_from_sha256'] = digest
    old_code = {cell.id: cell for cell in old.cells if cell.cell_type == 'code'}
    for cell in kept.cells:
        if cell.cell_type == 'code':
            if cell.id not in old_code or old_code[cell.id].source != cell.source:
                return None
            cell.outputs = copy.deepcopy(old_code[cell.id].outputs)
            cell.execution_count = old_code[cell.id].execution_count
    return kept


def check(root):
    problems = []
    results = load_results(root)
    if results is None:
        problems.append(f'{RESULTS}: missing (run python {TOOL} --measure)')
    elif results.get('code_sha256') != code_sha256(root):
        problems.append(f'{RESULTS}: measured other code (run python {TOOL} --measure)')
    elif results.get('quotes') != quotes_of(results):
        problems.append(f'{RESULTS}: its quotes differ from its measurements')
    nb, missing = build_notebook(root)
    for key in sorted(missing):
        problems.append(f'{PROSE}: figure {{{{epi:{key}}}}} is not in {RESULTS}')
    old = make_notebooks.existing(Path(root) / NOTEBOOK)
    if old is None:
        problems.append(f'{NOTEBOOK}: missing')
        return problems
    if make_notebooks.cells_without_outputs(old) != make_notebooks.cells_without_outputs(nb):
        problems.append(f'{NOTEBOOK}: cells differ from a fresh build')
    meta = nb.metadata['microgpt']
    if old.metadata.get('microgpt', {}) != {**meta, 'outputs_from_sha256': meta['source_sha256']}:
        problems.append(f'{NOTEBOOK}: outputs are missing or come from older sources')
    return problems


def write(root, execute_it=False):
    """Build the notebook, keeping or (execute_it) making its outputs; returns a note."""
    nb, missing = build_notebook(root)
    for key in sorted(missing):
        print(f'warning: figure {key} is not measured yet', file=sys.stderr)
    path = Path(root) / NOTEBOOK
    old = make_notebooks.existing(path)
    kept = with_outputs_of(nb, old)
    if execute_it:
        env_backend = os.environ.pop('MPLBACKEND', None)   # inline figures, not Agg
        start = time.perf_counter()
        try:
            ran = execute(nb, path.parent)
        finally:
            if env_backend is not None:
                os.environ['MPLBACKEND'] = env_backend
        seconds = time.perf_counter() - start
        metadata = copy.deepcopy(nb.metadata)
        metadata['microgpt']['outputs_from_sha256'] = metadata['microgpt']['source_sha256']
        make_notebooks.clean_outputs(ran, metadata)
        results = load_results(root)
        if results is not None:   # the run time is a figure the prose quotes
            results['notebook'] = {'seconds': seconds, 'load_avg_1min': os.getloadavg()[0],
                                   'cpu_count': os.cpu_count()}
            write_results(root, results)
            rebuilt, _ = build_notebook(root)
            for cell, new in zip(ran.cells, rebuilt.cells):
                if cell.cell_type == 'markdown':
                    cell.source = new.source
        nb = ran
        note = f'executed in {seconds:.0f} s'
    elif kept is not None:
        nb = kept
        note = 'outputs kept'
    else:
        note = 'built without outputs (run with --execute)'
    path.write_text(make_notebooks.dumps(nb), encoding='utf-8')
    return note


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--check', action='store_true', help='verify, write nothing')
    parser.add_argument('--measure', action='store_true', help=f'write {RESULTS}')
    parser.add_argument('--execute', action='store_true', help='run the notebook, keep outputs')
    args = parser.parse_args()
    root = stages.ROOT
    try:
        if args.check:
            problems = check(root)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                sys.exit(f'error: the epilogue is stale: run python {TOOL} (see above)')
            print('the epilogue is up to date')
            return
        if args.measure:
            start = time.perf_counter()
            measured = measure(root)
            old = load_results(root) or {}
            if 'notebook' in old:
                measured['notebook'] = old['notebook']
            measured['code_sha256'] = code_sha256(root)
            measured['generated'] = f'by python {TOOL} --measure; do not edit: rerun the tool'
            write_results(root, measured)
            print(f'{RESULTS}: measured in {time.perf_counter() - start:.0f} s')
        elif load_results(root) is not None:   # the quotes follow a change of quotes_of()
            write_results(root, load_results(root))
        print(f'{NOTEBOOK}: {write(root, args.execute)}')
    except BuildError as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
