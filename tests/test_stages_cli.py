"""The six stage scripts run as a user runs them: as subprocesses, end to end, with small
configs. They print the promised lines in order, are reproducible from --seed, find their data
from any working directory, and turn bad input into a one-line error instead of a traceback.

Run: python -m pytest -q tests/test_stages_cli.py
"""
import functools
import math
import os
import re

import pytest

from conftest import NAMES_FILE, NUM_STAGES, run_script, small_args

STAGES = range(NUM_STAGES)
LINE_KINDS = {  # kind: the whole line
    "docs": r"num docs: (\d+) \((\d+) train, (\d+) val\)",
    "vocab": r"vocab size: (\d+)",
    "params": r"num params: (\d+)",
    "check": r"gradient check \(backprop vs finite differences\): max relative error (\S+)",
    "step": r"step +(\d+) / +(\d+) \| loss (\S+)",
    "train": r"train loss \(last 50 steps\): (\S+)",
    "val": r"val loss: (\S+) \((\d+) names\)",
    "train_time": r"train time: (\S+) s",
    "eval_time": r"eval time: (\S+) s",
    "sample": r"sample (\d\d): (.*)",
}
TIMING_LINE = re.compile(r"^(train|eval) time: ")


def parse_output(stdout):
    """[(kind, groups)] for each line; fails the test on a line of no known kind."""
    parsed = []
    for line in stdout.split("\n")[:-1]:  # the output ends with a newline
        kinds = [kind for kind, pattern in LINE_KINDS.items() if re.fullmatch(pattern, line)]
        assert len(kinds) == 1, f"unexpected output line: {line!r}"
        parsed.append((kinds[0], re.fullmatch(LINE_KINDS[kinds[0]], line).groups()))
    return parsed


def steps_args(i, steps):
    return [] if i == 0 else ["--steps", str(steps)]   # stage 0 counts every name once


@functools.lru_cache(maxsize=None)
def cached_run(i, args, hash_seed="0"):
    """run_script, once per distinct (stage, flags, PYTHONHASHSEED) in the session."""
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    return run_script(i, args, env=env)


def small_run_args(i, data, seed=42):
    return tuple(small_args(i, data) + steps_args(i, 3) + ["--samples", "3", "--seed", str(seed)])


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
    expected = f"docs vocab params {check}(step )+train val train_time eval_time( sample){{3}}"
    assert re.fullmatch(expected, kinds), kinds
    names = names_file.read_text(encoding="utf-8").split()
    groups = dict(parsed)   # the last line of each kind
    num_docs, num_train, num_val = map(int, groups["docs"])
    assert num_docs == len(names)
    assert num_train + num_val == num_docs   # the names in this file are distinct
    assert int(groups["vocab"][0]) == len(set("".join(names))) + 1
    assert int(groups["params"][0]) > 0
    step_lines = [g for kind, g in parsed if kind == "step"]
    num_steps = num_train if i == 0 else 3
    assert [int(done) for done, _, _ in step_lines][0] == 1
    assert [int(done) for done, _, _ in step_lines][-1] == num_steps
    assert {int(total) for _, total, _ in step_lines} == {num_steps}
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
        return [line for line in stdout.split("\n") if not TIMING_LINE.match(line)]

    assert without_timing(first.stdout) == without_timing(again.stdout)
    assert without_timing(first.stdout) != without_timing(other_seed.stdout)


def test_default_data_path_is_found_from_another_working_directory(tmp_path):
    result = run_script(0, ["--samples", "1"], cwd=tmp_path)
    assert_ran(result)
    num_names = len(NAMES_FILE.read_text(encoding="utf-8").split())
    assert result.stdout.startswith(f"num docs: {num_names} ")


def test_deep_wide_model_backward_has_no_recursion_error(tmp_path):
    """The full script at 12 layers of width 64 (592,256 parameters). Since dot() is one node,
    this graph is only ~420 nodes deep, so a recursive backward would pass here too: the
    100,000-node chain in test_math.py is the test that catches one."""
    data = tmp_path / "names.txt"   # 10 two-letter names: 1 to validate, short forward passes
    data.write_text("al\nbo\ncy\ndi\ned\nfa\ngu\nhi\nio\nja\n", encoding="utf-8")
    args = ["--data", data, "--n-layer", "12", "--n-embd", "64", "--n-head", "4"]
    args += ["--block-size", "8", "--steps", "1", "--samples", "0"]
    result = run_script(5, args)
    assert_ran(result)
    assert "num params: 592256\n" in result.stdout   # 12 layers of width 64 were built
    assert "step    1 /    1 | loss " in result.stdout


# --- bad input -------------------------------------------------------------------------------
NINE_NAMES = ["anna", "bob", "cy", "di", "ed", "flo", "gus", "hal", "ivy"]
DATA_CASES = {  # name: bytes of the data file (None: no such file, DIRECTORY: a directory)
    "missing file": None,
    "directory as data": "DIRECTORY",
    "not utf-8": "\n".join(f"andr\xe9{i}" for i in range(20)).encode("latin-1"),
    "empty file": b"",
    "whitespace only": b"  \n\t\n\r\n\n",
    "9 distinct names": "\n".join(NINE_NAMES * 5).encode(),
}
FLAG_CASES = {  # name: (the stages that have the flag, the bad flags)
    "steps 0": (range(1, 6), ["--steps", "0"]),
    "steps -1": (range(1, 6), ["--steps", "-1"]),
    "steps abc": (range(1, 6), ["--steps", "abc"]),
    "samples -1": (range(0, 6), ["--samples", "-1"]),
    "temperature 0": (range(1, 6), ["--temperature", "0"]),
    "temperature nan": (range(1, 6), ["--temperature", "nan"]),
    "lr 0": (range(1, 6), ["--lr", "0"]),
    "n-embd 6 n-head 4": (range(4, 6), ["--n-embd", "6", "--n-head", "4"]),
    "block-size 1": (range(3, 6), ["--block-size", "1"]),
    "beta1 1.0": (range(5, 6), ["--beta1", "1.0"]),
    "unknown flag": (range(0, 6), ["--frobnicate"]),
    "lr 1e6 diverges": (range(1, 6), ["--lr", "1e6", "--steps", "30"]),
    "lr 1e6 diverges at the last step": (range(1, 6), ["--lr", "1e6", "--steps", "1"]),
}
BAD_INPUT = [(i, name) for name in DATA_CASES for i in STAGES]
BAD_INPUT += [(i, name) for name, (flag_stages, _) in FLAG_CASES.items() for i in flag_stages]
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
        bad_flags = FLAG_CASES[case][1]
    # a small, short run, so that a check that is missing fails fast instead of training long
    args = small_args(i, data) + steps_args(i, 1) + ["--samples", "1"] + bad_flags
    result = run_script(i, args)
    assert result.returncode != 0
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
    result = run_script(i, small_args(i, data) + steps_args(i, 20) + ["--samples", "5"])
    assert_ran(result)
    parsed = parse_output(result.stdout)
    chars = set("".join(MESSY_NAMES))
    assert int(dict(parsed)["vocab"][0]) == len(chars) + 1   # no '\r' or BOM in the vocabulary
    samples = [g[1] for kind, g in parsed if kind == "sample"]
    assert len(samples) == 5
    assert set("".join(samples)) <= chars
