"""tools/experiments.py: the committed measurements are fresh, each ablation is a small exact
change to train5_adam.py that still compiles, and the figures are quoted as the tables show them.
No long training here: one ablated copy trains for 2 steps on a small data file."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT
import experiments  # noqa: E402  (conftest puts tools/ on sys.path)
import experiments_report as report  # noqa: E402
import stages  # noqa: E402


def test_committed_results_tables_and_figures_are_fresh():
    done = subprocess.run([sys.executable, "tools/experiments.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("ablation", report.ABLATIONS + report.DEMOS,
                         ids=lambda a: a.name)
def test_each_ablation_edit_matches_once_and_the_copy_compiles(ablation):
    original = stages.read_stage(ablation.stage)
    patched = report.patch(original, ablation.edits)   # raises unless each matches once
    compile(patched, stages.STAGE_FILES[ablation.stage], "exec")
    assert (patched != original) == bool(ablation.edits)
    assert ablation.edits or ablation.settings   # every ablation changes something (a demo
    # runs the stage itself on other data)


def test_code_hash_ignores_comments_and_docstrings_but_not_code():
    text = '"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1   # why\n'
    edited = '"""Other."""\ndef f(x):\n    return x + 1   # other\n'
    assert experiments.code_sha256(edited) == experiments.code_sha256(text)
    assert experiments.code_sha256(text.replace("x + 1", "x + 2")) != experiments.code_sha256(text)


def test_patch_refuses_an_edit_that_matches_twice_or_never():
    with pytest.raises(stages.CourseError, match="2 times"):
        report.patch("x = 1\nx = 1\n", [("x = 1", "x = 2")])
    with pytest.raises(stages.CourseError, match="0 times"):
        report.patch("x = 1\n", [("y = 1", "y = 2")])


def test_an_ablated_copy_trains_and_its_output_is_parsed(names_file, monkeypatch):
    monkeypatch.setattr(experiments, "DATA", names_file)
    job = experiments.Job("ablation", "attention_current", report.FULL_STAGE, 2, 1)
    run = experiments.run_job(job, train_names=set(), data_names={"anna"})
    assert "error" not in run, run.get("error")
    assert 0 < run["val_loss"] < 10
    assert 0 < run["train_loss_last50"] < 10
    assert len(run["samples"]) == report.NUM_SAMPLES
    assert run["samples_in_train"] == 0
    assert run["sha256"] == stages.sha256(experiments.job_script(job)[1])


def fake_results(ladder, ablated=None):
    """results.json contents: stage 5 at 1,000 steps with the val losses `ladder` (seeds 1, 2,
    ...) and the ablation no_rmsnorm with the val losses `ablated`."""
    runs = []
    for group, name, losses in (("ladder", "stage5", ladder), ("ablation", "no_rmsnorm", ablated)):
        for seed, loss in enumerate(losses or [], 1):
            runs.append({"group": group, "name": name, "stage": 5, "num_steps": 1000,
                         "seed": seed, "val_loss": loss, "samples": ["anna", "zz"],
                         "samples_in_train": 1, "samples_in_data": 1})
    return {"runs": runs}


def test_quote_gives_the_mean_its_effective_choices_and_its_spread():
    results = fake_results([2.428, 2.432, 2.436])
    quotes = report.quotes(results)
    assert quotes["ladder.s5.1000"] == "2.432 nats"
    assert quotes["ladder.s5.1000.choices"] == "11.4"   # e ** 2.432 = 11.38
    assert quotes["ladder.s5.1000.spread"] == "± 0.004 over 3 seeds"
    assert quotes["samples.s5.1000"] == "50% of 6 samples are training names"


def test_ablation_quote_says_whether_every_seed_agrees():
    apart = fake_results([2.40, 2.41, 2.42], [2.43, 2.44, 2.45])
    assert report.quotes(apart)["ablation.no_rmsnorm.1000"] == \
        "+0.030 nats, worse on every seed"
    mixed = fake_results([2.40, 2.41, 2.42], [2.39, 2.42, 2.43])
    assert report.quotes(mixed)["ablation.no_rmsnorm.1000"] == \
        "+0.003 nats, within noise: better on some seeds, worse on others"


def test_ablation_beyond_the_seed_spread_only_when_the_ranges_do_not_overlap():
    apart = fake_results([2.40, 2.41, 2.42], [2.43, 2.44, 2.45])["runs"]
    assert report.comparison(apart, "no_rmsnorm", 1000)[3] == "yes: every seed worse"
    overlapping = fake_results([2.40, 2.41, 2.42], [2.42, 2.41, 2.45])["runs"]
    _, _, diff, verdict = report.comparison(overlapping, "no_rmsnorm", 1000)
    assert verdict == "no: the seed ranges overlap"   # the README's "beyond the seed spread?"
    assert diff.min == pytest.approx(0.0)
    assert diff.max == pytest.approx(0.03)


def committed_val(name, steps, group="ablation"):
    return report.val_by_seed(experiments.load_results()["runs"], group, name, steps)


@pytest.mark.parametrize("steps", [report.SHORT, report.LONG])
@pytest.mark.parametrize("name", ["s3_no_context", "s3_attention_current", "s3_no_position"])
def test_stage3_factorial_of_attention_and_position_is_measured_on_every_seed(name, steps):
    assert set(committed_val(name, steps)) == set(report.SEEDS)
    assert set(committed_val("stage3", steps, "ladder")) == set(report.SEEDS)


def test_attention_demo_beats_current_position_only_by_far_on_every_seed():
    full = committed_val("demo_full", report.DEMO_STEPS, "demo")
    current = committed_val("demo_current", report.DEMO_STEPS, "demo")
    assert set(full) == set(current) == set(report.SEEDS)
    for seed in report.SEEDS:
        assert current[seed] - full[seed] > 0.5, seed   # nats: a gap no one can miss


def test_attention_demo_looks_back_with_most_of_its_weight_on_every_seed():
    runs = [r for r in experiments.load_results()["runs"] if r["name"] == "demo_full"]
    assert {r["seed"] for r in runs} == set(report.SEEDS)
    for run in runs:
        assert run["attention"]["max_weight"] >= 0.5, run["seed"]
        assert run["attention"]["on_match"] >= 0.5, run["seed"]   # and on the right letter


def test_attention_probe_finds_a_head_that_copies_from_two_back(tmp_path):
    """The probe appended to a tiny script whose attention puts all weight two positions back
    (or on BOS before that): max_weight and on_match must both be 1."""
    script = tmp_path / "fake.py"
    script.write_text("""
val_docs = ['abcabc', 'xyzxyz']
def encode(doc):
    return [99] + [ord(ch) for ch in doc] + [99]
class P:
    def __init__(self, data):
        self.data = data
def softmax(logits):
    return [P(x) for x in logits]
def gpt(token_id, pos_id, keys, values):
    keys.append(pos_id)
    target = max(0, pos_id - 2)
    return softmax([1.0 if k == target else 0.0 for k in keys])
""" + experiments.PROBE.read_text(encoding="utf-8"))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.split("attention: ", 1)[1])
    assert found["length"] == 3 and found["lookback"] == [3, 4, 5]
    assert found["max_weight"] == 1.0 and found["on_match"] == 1.0
    assert found["grid"][4] == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]
