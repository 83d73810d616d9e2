"""The six stage scripts run as a user runs them: as subprocesses, end to end, with small
settings (--name=value). They print the promised lines in order, are reproducible from --seed,
find their data from any working directory, list their settings with --help, and turn bad
input into a one-line error instead of a traceback.

Run: python -m pytest -q tests/test_stages_cli.py
"""
import functools
import math
import os
import re

import pytest

from conftest import (NAMES_FILE, NUM_STAGES, ROOT, load_stage, run_script, run_section,
                      small_args, stages)

STAGE_FILES = stages.STAGE_FILES
STAGES = range(NUM_STAGES)
LINE_KINDS = {  # kind: the whole line
    "docs": r"num docs: (\d+) \((\d+) train, (\d+) val\)",
    "vocab": r"vocab size: (\d+)",
    "params": r"num params: (\d+)",
    "check": r"gradient check \(backprop vs finite differences\): max relative error (\S+)",
    "step": r"step +(\d+) / (\d+) \| loss (\d+\.\d{4}) \| \d+\.\d\d ms/step \| ETA \d+ s",
    "train": r"train loss \(last 50 steps\): (\S+)",
    "val": r"val loss: (\S+) \((\d+) names\)",
    "sample": r"sample (\d\d): (.*)",
}
TIMING = re.compile(r" \| \d+\.\d\d ms/step \| ETA \d+ s$", re.M)   # of a progress line
SETTINGS = {  # stage: {setting: its default as --help prints it} (the interface of issue 9)
    0: {"data_path": str(ROOT / "data" / "names.txt"), "seed": "42", "num_steps": "1000",
        "block_size": "16", "num_samples": "20"},
}
for _stage, _lr in zip(range(1, 6), ["1.0", "1.0", "0.1", "0.1", "0.01"]):
    SETTINGS[_stage] = {**SETTINGS[0], "learning_rate": _lr, "n_embd": "16",
                        "temperature": "0.5"}
for _stage in (4, 5):
    SETTINGS[_stage].update({"n_head": "4", "n_layer": "1"})
SETTINGS[5].update({"beta1": "0.85", "beta2": "0.99"})


def parse_output(stdout):
    """[(kind, groups)] for each line; fails the test on a line of no known kind."""
    parsed = []
    for line in stdout.split("\n")[:-1]:  # the output ends with a newline
        kinds = [kind for kind, pattern in LINE_KINDS.items() if re.fullmatch(pattern, line)]
        assert len(kinds) == 1, f"unexpected output line: {line!r}"
        parsed.append((kinds[0], re.fullmatch(LINE_KINDS[kinds[0]], line).groups()))
    return parsed


def steps_args(steps):
    return [f"--num_steps={steps}"]


@functools.cache
def cached_run(i, args, hash_seed="0"):
    """run_script, once per distinct (stage, flags, PYTHONHASHSEED) in the session."""
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return run_script(i, args, env=env)


def small_run_args(i, data, seed=42, steps=3):
    return tuple(small_args(i, data) + steps_args(steps) + ["--num_samples=3", f"--seed={seed}"])


def assert_ran(result):
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.parametrize("i", STAGES)
def test_stage_prints_its_lines_in_order_with_finite_losses(i, names_file):
    result = cached_run(i, small_run_args(i, names_file))
    assert_ran(result)
    parsed = parse_output(result.stdout)
    kinds = " ".join(kind for kind, _ in parsed)
    check = "check " if i == 1 else ""
    expected = f"docs vocab params {check}(step )+train val( sample){{3}}"
    assert re.fullmatch(expected, kinds), kinds
    names = names_file.read_text(encoding="utf-8").split()
    groups = dict(parsed)   # the last line of each kind
    num_docs, num_train, num_val = map(int, groups["docs"])
    assert num_docs == len(names)
    assert num_train + num_val == num_docs   # the names in this file are distinct
    assert int(groups["vocab"][0]) == len(set("".join(names))) + 1
    assert int(groups["params"][0]) > 0
    step_lines = [g for kind, g in parsed if kind == "step"]
    assert [int(done) for done, _, _ in step_lines] == [1, 2, 3]   # 3 steps: a line each
    assert {int(total) for _, total, _ in step_lines} == {3}
    losses = [float(loss) for _, _, loss in step_lines]
    losses += [float(groups["train"][0]), float(groups["val"][0])]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses), losses
    assert int(groups["val"][1]) == num_val
    if i == 1:
        assert float(groups["check"][0]) < 1e-6
    samples = [g[1] for kind, g in parsed if kind == "sample"]
    assert [g[0] for kind, g in parsed if kind == "sample"] == ["01", "02", "03"]
    assert set("".join(samples)) <= set("".join(names)), samples


@pytest.mark.parametrize("i", STAGES)
def test_same_seed_gives_identical_output_and_another_seed_does_not(i, names_file):
    first = cached_run(i, small_run_args(i, names_file))
    again = cached_run(i, small_run_args(i, names_file), hash_seed="1")   # and other set order
    other_seed = cached_run(i, small_run_args(i, names_file, seed=7))
    for result in first, again, other_seed:
        assert_ran(result)

    def without_timing(stdout):
        return TIMING.sub("", stdout)

    assert "ms/step" not in without_timing(first.stdout)
    assert without_timing(first.stdout) == without_timing(again.stdout)
    assert without_timing(first.stdout) != without_timing(other_seed.stdout)


@pytest.mark.parametrize("i", STAGES)
def test_progress_line_every_tenth_of_the_run_with_the_mean_loss_since_the_last(i, names_file):
    """The training section run in-process, so that its per-step losses can be compared with
    what its progress lines print."""
    ns = load_stage(i, small_args(i, names_file) + steps_args(25), upto="training")
    printed = run_section(ns, i, "training")
    step_lines = [g for kind, g in parse_output(printed) if kind == "step"]
    assert [int(done) for done, _, _ in step_lines] == list(range(2, 26, 2))   # 25 // 10 = 2
    assert {int(total) for _, total, _ in step_lines} == {25}
    losses = [loss.data if hasattr(loss, "data") else loss for loss in ns["losses"]]
    for done, _, loss in step_lines:
        since_last = losses[int(done) - 2:int(done)]
        assert float(loss) == pytest.approx(sum(since_last) / 2, abs=5e-5)


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("i", STAGES)
def test_help_shows_every_setting_as_written_with_its_comment_and_exits_0(i, flag):
    result = run_script(i, [flag])
    assert_ran(result)
    shown = dict(re.findall(r"^(\w+) = (.*)$", result.stdout, re.M))   # name = default   # why
    assert set(shown) == set(SETTINGS[i])
    for name, default in SETTINGS[i].items():
        if name != "data_path":   # its default is computed from the script's folder
            value, _, comment = shown[name].partition("   # ")
            assert value == default and comment.strip(), shown[name]
    assert f"Run: python {STAGE_FILES[i]}" in result.stdout   # the docstring comes first


@pytest.mark.parametrize("i", STAGES)
def test_a_setting_written_with_a_space_gets_a_hint_to_write_name_equals_value(i):
    result = run_script(i, ["--num_steps", "100"])
    assert result.returncode == 1
    assert result.stderr == "error: '--num_steps' is not --name=value with a setting's name " \
                            "(--help lists them)\n"


def test_default_data_path_is_found_from_another_working_directory(tmp_path):
    result = run_script(0, ["--num_samples=1"], cwd=tmp_path)
    assert_ran(result)
    num_names = len(NAMES_FILE.read_text(encoding="utf-8").split())
    assert result.stdout.startswith(f"num docs: {num_names} ")


def test_deep_wide_model_backward_has_no_recursion_error(tmp_path):
    """The full script at 12 layers of width 64 (592,256 parameters). Since dot() is one node,
    this graph is only ~420 nodes deep, so a recursive backward would pass here too: the
    100,000-node chain in test_math.py is the test that catches one."""
    data = tmp_path / "names.txt"   # 10 two-letter names: 1 to validate, short forward passes
    data.write_text("al\nbo\ncy\ndi\ned\nfa\ngu\nhi\nio\nja\n", encoding="utf-8")
    args = [f"--data_path={data}", "--n_layer=12", "--n_embd=64", "--n_head=4"]
    args += ["--block_size=8", "--num_steps=1", "--num_samples=0"]
    result = run_script(5, args)
    assert_ran(result)
    assert "num params: 592256\n" in result.stdout   # 12 layers of width 64 were built
    assert "step    1 / 1 | loss " in result.stdout


# --- bad input -------------------------------------------------------------------------------
NINE_NAMES = ["anna", "bob", "cy", "di", "ed", "flo", "gus", "hal", "ivy"]
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489")
DATA_CASES = {  # name: bytes of the data file (None: no such file, DIRECTORY: a directory)
    "missing file": None,
    "directory as data": "DIRECTORY",
    "not utf-8": "\n".join(f"andr\xe9{i}" for i in range(20)).encode("latin-1"),
    "binary (png)": PNG * 20,
    "empty file": b"",
    "whitespace only": b"  \n\t\n\r\n\n",
    "9 distinct names": "\n".join(NINE_NAMES * 5).encode(),
}
ALL, MODELS, HEADS = range(0, 6), range(1, 6), range(4, 6)
SETTING_CASES = {  # name: (the stages that have the settings, the bad settings)
    "unknown setting": (ALL, ["--frobnicate=1"]),
    "old flag": (ALL, ["--steps", "3"]),
    "num_steps abc": (ALL, ["--num_steps=abc"]),
    "num_steps 2.5": (ALL, ["--num_steps=2.5"]),
    "num_steps 0": (ALL, ["--num_steps=0"]),
    "num_steps -1": (ALL, ["--num_steps=-1"]),
    "block_size 0": (ALL, ["--block_size=0"]),
    "num_samples -1": (ALL, ["--num_samples=-1"]),
    "seed 1.5": (ALL, ["--seed=1.5"]),
    "n_embd 0": (MODELS, ["--n_embd=0"]),
    "n_embd -4": (MODELS, ["--n_embd=-4"]),
    "temperature 0": (MODELS, ["--temperature=0"]),
    "temperature -1": (MODELS, ["--temperature=-1"]),
    "temperature nan": (MODELS, ["--temperature=nan"]),
    "temperature abc": (MODELS, ["--temperature=abc"]),
    "learning_rate 0": (MODELS, ["--learning_rate=0"]),
    "learning_rate nan": (MODELS, ["--learning_rate=nan"]),
    "n_head 0": (HEADS, ["--n_head=0"]),
    "n_layer 0": (HEADS, ["--n_layer=0"]),
    "n_embd 6 n_head 4": (HEADS, ["--n_embd=6", "--n_head=4"]),
    "beta1 1.0": ([5], ["--beta1=1.0"]),
    "beta2 1.0": ([5], ["--beta2=1.0"]),
    "beta1 -0.1": ([5], ["--beta1=-0.1"]),
    "setting of a later stage": (range(0, 4), ["--n_head=2"]),
    "learning_rate 1e6 diverges": (MODELS, ["--learning_rate=1e6", "--num_steps=30"]),
    "learning_rate 1e6 diverges at the last step": (MODELS, ["--learning_rate=1e6",
                                                             "--num_steps=1"]),
}
BAD_INPUT = [(i, name) for name in DATA_CASES for i in STAGES]
BAD_INPUT += [(i, name) for name, (case_stages, _) in SETTING_CASES.items() for i in case_stages]
BAD_INPUT = [pytest.param(i, name, id=f"stage{i}-{name}") for i, name in BAD_INPUT]


@pytest.mark.parametrize("i, case", BAD_INPUT)
def test_bad_input_gives_one_line_error_and_no_traceback(i, case, names_file, tmp_path):
    data = names_file
    bad_flags = []
    if case in DATA_CASES and DATA_CASES[case] == "DIRECTORY":
        data = tmp_path
    elif case in DATA_CASES:
        data = tmp_path / "names.txt"
        if DATA_CASES[case] is not None:
            data.write_bytes(DATA_CASES[case])
    else:
        bad_flags = SETTING_CASES[case][1]
    # a small, short run, so that a check that is missing fails fast instead of training long
    args = small_args(i, data) + steps_args(1) + ["--num_samples=1"] + bad_flags
    result = run_script(i, args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: "), result.stderr


MESSY_NAMES = ["Anna", "JOSÉ", "Zoë", "Ölçü", "r2d2", "Mary Jane", "o'brien", "Łukasz",
               "Wolfgangamadeusmaximilian",   # longer than any block_size used here
               "Anna", "bob", "Chloé", "Dmitri", "eve", "Ümit", "x", "Yūki", "zed"]


@pytest.mark.parametrize("i", STAGES)
def test_capitals_accents_digits_crlf_and_long_names_still_train(i, tmp_path):
    data = tmp_path / "names.txt"
    data.write_text("\r\n".join(MESSY_NAMES) + "\r\n", encoding="utf-8-sig")   # with a BOM
    result = run_script(i, small_args(i, data) + steps_args(20) + ["--num_samples=5"])
    assert_ran(result)
    parsed = parse_output(result.stdout)
    chars = set("".join(MESSY_NAMES))
    assert int(dict(parsed)["vocab"][0]) == len(chars) + 1   # no '\r' or BOM in the vocabulary
    samples = [g[1] for kind, g in parsed if kind == "sample"]
    assert len(samples) == 5
    assert set("".join(samples)) <= chars
