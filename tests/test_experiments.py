"""tools/experiments.py: the committed measurements are fresh, each ablation is a small exact
change to train5_adam.py that still compiles, and the figures are quoted as the tables show them.
No long training here: one ablated copy trains for 2 steps on a small data file."""
import subprocess
import sys

import pytest

from conftest import ROOT
import experiments  # noqa: E402  (conftest puts tools/ on sys.path)
import stages  # noqa: E402


def test_committed_results_tables_and_figures_are_fresh():
    done = subprocess.run([sys.executable, "tools/experiments.py", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("ablation", experiments.ABLATIONS, ids=lambda a: a.name)
def test_each_ablation_edit_matches_once_and_the_copy_compiles(ablation):
    original = stages.read_stage(experiments.FULL_STAGE)
    patched = experiments.patch(original, ablation.edits)   # raises unless each matches once
    compile(patched, stages.STAGE_FILES[experiments.FULL_STAGE], "exec")
    assert (patched != original) == bool(ablation.edits)
    assert ablation.edits or ablation.settings   # every ablation changes something


def test_code_hash_ignores_comments_and_docstrings_but_not_code():
    text = '"""Doc."""\ndef f(x):\n    """Doc."""\n    return x + 1   # why\n'
    edited = '"""Other."""\ndef f(x):\n    return x + 1   # other\n'
    assert experiments.code_sha256(edited) == experiments.code_sha256(text)
    assert experiments.code_sha256(text.replace("x + 1", "x + 2")) != experiments.code_sha256(text)


def test_patch_refuses_an_edit_that_matches_twice_or_never():
    with pytest.raises(ValueError, match="2 times"):
        experiments.patch("x = 1\nx = 1\n", [("x = 1", "x = 2")])
    with pytest.raises(ValueError, match="0 times"):
        experiments.patch("x = 1\n", [("y = 1", "y = 2")])


def test_an_ablated_copy_trains_and_its_output_is_parsed(names_file, monkeypatch):
    monkeypatch.setattr(experiments, "DATA", names_file)
    job = experiments.Job("ablation", "attention_current", experiments.FULL_STAGE, 2, 1)
    run = experiments.run_job(job, train_names=set(), data_names={"anna"})
    assert "error" not in run, run.get("error")
    assert 0 < run["val_loss"] < 10
    assert 0 < run["train_loss_last50"] < 10
    assert len(run["samples"]) == experiments.NUM_SAMPLES
    assert run["samples_in_train"] == 0
    assert run["sha256"] == experiments.sha256_text(experiments.job_script(job)[1])


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


def test_quote_gives_mean_sample_std_and_seeds():
    results = fake_results([2.428, 2.432, 2.436])
    assert experiments.quote("ladder", stage=5, steps=1000, results=results) == \
        "2.432 ± 0.004 (3 seeds)"
    assert experiments.quote("samples", stage=5, steps=1000, results=results) == \
        "50% of 6 samples are training names"


def test_ablation_beyond_the_seed_spread_only_when_the_ranges_do_not_overlap():
    apart = fake_results([2.40, 2.41, 2.42], [2.43, 2.44, 2.45])
    assert experiments.quote("ablation", name="no_rmsnorm", steps=1000, results=apart) == \
        "+0.030 (per seed +0.030 to +0.030, 3 seeds; beyond the seed spread)"
    overlapping = fake_results([2.40, 2.41, 2.42], [2.42, 2.41, 2.45])
    figures = experiments.figures(overlapping)
    assert figures["ablation.no_rmsnorm.1000.exceeds_spread"] is False
    assert figures["ablation.no_rmsnorm.1000.diff_min"] == pytest.approx(0.0)
    assert figures["ablation.no_rmsnorm.1000.diff_max"] == pytest.approx(0.03)
