"""The shape of the six stage scripts, so that each diff between stages shows one concept:
the same sections in the same order, untouched sections byte-identical, standard library
only, short lines, a short docstring, the glossary names that never get renamed, and issue 9's
budgets: non-blank lines per stage, and the data section within the first 45 lines.

Run: python -m pytest -q tests/test_structure.py
"""
import ast
import re
import sys

import pytest

from conftest import NUM_STAGES, load_stage, small_args, stages

STAGES = range(NUM_STAGES)
CANONICAL_ORDER = ["preamble", "settings", "data", "tokenizer", "autograd", "parameters",
                   "model", "gradients", "optimizer", "training", "evaluation", "sampling"]
SECTIONS = {  # the sections each stage has
    0: {"preamble", "settings", "data", "tokenizer", "parameters", "model", "training",
        "evaluation", "sampling"},
}
SECTIONS[1] = SECTIONS[0] | {"gradients", "optimizer"}
SECTIONS[2] = SECTIONS[1] - {"gradients"} | {"autograd"}
SECTIONS[3] = SECTIONS[2]
SECTIONS[4] = SECTIONS[2]
SECTIONS[5] = SECTIONS[2]
MAY_CHANGE = {  # stage i: the sections that may differ between stage i-1 and stage i
    1: {"preamble", "settings", "parameters", "model", "gradients", "optimizer", "training",
        "evaluation", "sampling"},
    2: {"preamble", "autograd", "parameters", "model", "gradients", "optimizer", "training",
        "evaluation", "sampling"},
    3: {"preamble", "settings", "parameters", "model", "sampling"},   # the cache arrives
    4: {"preamble", "settings", "parameters", "model", "sampling"},
    5: {"preamble", "settings", "optimizer", "training"},
}
# Issue 9: non-blank lines at most the reference's (66/157/133/167/174/177) plus 80
LINE_BUDGET = {0: 146, 1: 237, 2: 213, 3: 247, 4: 254, 5: 257}
DATA_HEADER_BY_LINE = 45   # a learner meets the data within the first 45 lines
GLOSSARY = {  # stage: the top-level names it must define (the later stages keep them)
    0: {"docs", "train_docs", "val_docs", "uchars", "BOS", "vocab_size", "encode",
        "block_size", "doc_loss", "loss", "losses", "num_steps", "seed", "num_samples",
        "data_path"},
    1: {"state_dict", "matrix", "dot", "linear", "softmax", "gpt", "learning_rate",
        "temperature", "n_embd"},
    2: {"Value", "params"},
    3: {"rmsnorm", "attention", "head_dim"},
    4: {"n_head", "n_layer"},
    5: {"adam_update", "adam_m", "adam_v", "beta1", "beta2"},
}
ONLY_IN = {  # names that belong to some stages only
    "bigram": {0}, "counts": {0},
    "doc_loss_and_grads": {1}, "linear_backward": {1}, "numerical_grad": {1},
    "gradient_check": {1}, "sgd_update": {1, 2, 3, 4},
}


def section_names(i):
    return [name for name, _ in stages.read_sections(i)]


def section_texts(i):
    return dict(stages.read_sections(i))


def defined_names(i):
    """Every name stage i assigns, defines or imports anywhere (functions and classes too)."""
    names = set()
    for node in ast.walk(ast.parse(stages.read_stage(i))):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


@pytest.mark.parametrize("i", STAGES)
def test_sections_appear_in_the_canonical_order(i):
    names = section_names(i)
    assert len(names) == len(set(names)), names   # each section once
    assert set(names) <= set(CANONICAL_ORDER), names
    assert names == sorted(names, key=CANONICAL_ORDER.index)


@pytest.mark.parametrize("i", STAGES)
def test_stage_has_exactly_the_sections_it_needs(i):
    assert set(section_names(i)) == SECTIONS[i]


@pytest.mark.parametrize("i", STAGES)
def test_no_section_is_a_stub(i):
    for name, body in stages.read_sections(i)[1:]:
        code = [line for line in body.split("\n")[1:] if line.strip()]
        code = [line for line in code if not line.lstrip().startswith("#")]
        assert len(code) >= 2 and code != ["pass"], f"section {name!r} is a stub"


@pytest.mark.parametrize("i", STAGES)
def test_every_header_line_is_well_formed(i):
    """A header with a typo would silently merge two sections."""
    for line in stages.read_stage(i).split("\n"):
        if line.startswith("# =") or line.rstrip().endswith("==="):
            assert re.fullmatch(r"# === [a-z]+( [a-z]+)* ===", line), line


@pytest.mark.parametrize("i", range(1, NUM_STAGES))
def test_sections_a_transition_does_not_concern_are_byte_identical(i):
    old = section_texts(i - 1)
    new = section_texts(i)
    for name in CANONICAL_ORDER:
        if name not in MAY_CHANGE[i]:
            assert old.get(name) == new.get(name), f"stage {i - 1} -> {i} changed {name!r}"
    assert set(stages.changed_sections(i)) <= MAY_CHANGE[i]


@pytest.mark.parametrize("name, stage_range", [("data", STAGES), ("tokenizer", STAGES),
                                               ("autograd", range(2, NUM_STAGES))])
def test_shared_section_is_identical_in_every_stage_that_has_it(name, stage_range):
    texts = {section_texts(i)[name] for i in stage_range}
    assert len(texts) == 1


def settings_override(i):
    """The lines of stage i's settings section from `settings = ...` (the --name=value loop
    on: the same mechanism in every stage (only the checks after it may differ)."""
    lines = section_texts(i)["settings"].split("\n")
    start = [n for n, line in enumerate(lines) if line.startswith("settings = ")]
    assert len(start) == 1, "the settings section has no 'settings = ...' line"
    loop = lines[start[0]:]
    end = [n for n, line in enumerate(loop) if line.startswith("if ")][0]   # the first check
    return "\n".join(loop[:end])


def test_settings_override_is_identical_in_every_stage():
    texts = {settings_override(i) for i in STAGES}
    assert len(texts) == 1
    assert "is not --name=value with a setting" in texts.pop()


@pytest.mark.parametrize("i", STAGES)
def test_non_blank_lines_are_within_the_budget_of_issue_9(i):
    lines = [line for line in stages.read_stage(i).split("\n") if line.strip()]
    assert len(lines) <= LINE_BUDGET[i]


@pytest.mark.parametrize("i", STAGES)
def test_data_section_starts_within_the_first_45_lines(i):
    lines = stages.read_stage(i).split("\n")
    assert lines.count("# === data ===") == 1
    assert lines.index("# === data ===") + 1 <= DATA_HEADER_BY_LINE


def test_every_section_header_reads_the_same_in_every_stage():
    """One header format, and the same text for a section wherever it appears: a header is
    exactly '# === name ===', so a section name spelled two ways would show up twice here."""
    headers = {}
    for i in STAGES:
        for line in stages.read_stage(i).split("\n"):
            if line.startswith("# ==="):
                headers.setdefault(line, set()).add(i)
    names = {line.removeprefix("# === ").removesuffix(" ===") for line in headers}
    assert names == set(CANONICAL_ORDER) - {"preamble"}, headers


@pytest.mark.parametrize("i", STAGES)
def test_script_imports_only_the_standard_library(i):
    modules = []
    for node in ast.walk(ast.parse(stages.read_stage(i))):
        if isinstance(node, ast.Import):
            modules += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            modules.append(node.module)
    assert modules   # the walk found the imports
    for module in modules:
        assert module.split(".")[0] in sys.stdlib_module_names, module


@pytest.mark.parametrize("i", STAGES)
def test_lines_are_shorter_than_100_characters(i):
    for number, line in enumerate(stages.read_stage(i).split("\n"), start=1):
        assert len(line) < 100, f"line {number}: {line}"


@pytest.mark.parametrize("i", STAGES)
def test_no_new_or_exercise_markers(i):
    markers = re.compile(r"#.*\b(NEW|TODO|FIXME|EXERCISE|YOUR CODE)\b")
    for line in stages.read_stage(i).split("\n"):
        assert not markers.search(line), line


@pytest.mark.parametrize("i", STAGES)
def test_docstring_has_3_to_6_lines_and_says_how_to_run(i):
    docstring = ast.get_docstring(ast.parse(stages.read_stage(i)))
    lines = docstring.strip().split("\n")
    assert 3 <= len(lines) <= 6, lines
    assert lines[0].startswith(f"Stage {i}: ")
    assert f"Run: python {stages.STAGE_FILES[i]}" in docstring


@pytest.mark.parametrize("i", STAGES)
def test_glossary_names_are_defined_and_never_renamed(i):
    names = defined_names(i)
    for stage in range(i + 1):
        assert GLOSSARY[stage] <= names, GLOSSARY[stage] - names
    for name, only_in in ONLY_IN.items():
        assert (name in names) == (i in only_in), name


def expected_state_dict_keys(i, n_layer):
    if i in (1, 2):
        return ["wte", "mlp_fc1", "mlp_fc2"]
    block = ["attn_wq", "attn_wk", "attn_wv", "attn_wo", "mlp_fc1", "mlp_fc2"]
    if i == 3:
        return ["wte", "wpe"] + block + ["lm_head"]
    layers = [f"layer{layer}.{name}" for layer in range(n_layer) for name in block]
    return ["wte", "wpe"] + layers + ["lm_head"]


@pytest.mark.parametrize("i", range(1, NUM_STAGES))
def test_state_dict_keys_follow_the_glossary(i, names_file):
    args = small_args(i, names_file, n_embd=4) + (["--n_layer=2"] if i >= 4 else [])
    ns = load_stage(i, args, upto="model")
    assert list(ns["state_dict"]) == expected_state_dict_keys(i, n_layer=2)
    if i >= 2:   # params is every entry of every matrix, in state_dict order
        flat = [p for mat in ns["state_dict"].values() for row in mat for p in row]
        assert len(ns["params"]) == len(flat)
        assert all(p is q for p, q in zip(ns["params"], flat))
