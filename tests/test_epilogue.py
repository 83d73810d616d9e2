"""The epilogue notebook (notebooks/epilogue.ipynb, built by tools/epilogue.py): its tensor GPT
is stage 5's model, the causal-mask form equals the key/value-cache form, and the committed
notebook and measurements are fresh. The code under test is the notebook's own: the `# shared:`
cells of notebooks/prose/epilogue.md, which the notebook and the tool run too.

Run: python -m pytest -q tests/test_epilogue.py  (skipped when torch is not installed)
"""
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent
import epilogue  # noqa: E402
import stages  # noqa: E402

EQUAL_STEPS = 25


@pytest.fixture(scope="module")
def shared():
    return epilogue.shared_namespace(ROOT)


def test_tensor_gpt_reproduces_stage5_per_step_losses_in_float64(shared):
    both = shared["train_both"](shared["STAGE5"], shared["DATA"], EQUAL_STEPS)
    scalar = both["scalar_losses"]
    tensor = both["tensor_losses"]
    assert len(scalar) == len(tensor) == EQUAL_STEPS
    for step, (a, b) in enumerate(zip(scalar, tensor)):
        assert abs(a - b) <= 1e-9, (step, a, b)
    assert scalar[-1] != scalar[0]   # both trained: the weights moved


def test_weights_are_copied_by_state_dict_name(shared):
    ns, _ = shared["load_stage5"](shared["STAGE5"], shared["DATA"])
    weights = shared["tensors_of"](ns["state_dict"])
    assert list(weights) == list(ns["state_dict"])
    for name, mat in ns["state_dict"].items():
        assert weights[name].tolist() == [[p.data for p in row] for row in mat]


def test_causal_mask_form_equals_cache_form_for_every_length_up_to_block_size(shared):
    ns, _ = shared["load_stage5"](shared["STAGE5"], shared["DATA"], n_layer=2)
    weights = shared["tensors_of"](ns["state_dict"])
    letters = random.Random(0)
    for num_letters in range(ns["block_size"] + 2):   # the last one is cut at block_size
        doc = "".join(letters.choice(ns["uchars"]) for _ in range(num_letters))
        tokens = ns["encode"](doc)
        idx, _ = shared["batch_of"]([tokens], ns["block_size"])
        length = idx.shape[1]   # positions: BOS and the letters, at most block_size
        assert length == min(num_letters + 1, ns["block_size"])
        with torch.no_grad():
            masked = shared["gpt"](weights, idx, ns["n_head"])[0]   # (T, vocab_size)
            keys = [[] for _ in range(ns["n_layer"])]
            values = [[] for _ in range(ns["n_layer"])]
            cached = [shared["gpt_cached"](weights, idx[:, t], t, keys, values, ns["n_head"])[0]
                      for t in range(length)]
        scalar_keys = [[] for _ in range(ns["n_layer"])]   # stage 5's own cache, on Values
        scalar_values = [[] for _ in range(ns["n_layer"])]
        for t in range(length):
            scalar = [v.data for v in ns["gpt"](tokens[t], t, scalar_keys, scalar_values)]
            assert torch.allclose(cached[t], masked[t], rtol=0, atol=1e-12), (length, t)
            assert masked[t].tolist() == pytest.approx(scalar, rel=1e-12, abs=1e-12), (length, t)


def test_a_future_token_does_not_change_earlier_logits_in_the_mask_form(shared):
    ns, _ = shared["load_stage5"](shared["STAGE5"], shared["DATA"])
    weights = shared["tensors_of"](ns["state_dict"])
    idx = torch.tensor([[ns["BOS"], 0, 1, 2, 3]])
    changed = idx.clone()
    changed[0, -1] = 4
    with torch.no_grad():
        a = shared["gpt"](weights, idx, ns["n_head"])[0]
        b = shared["gpt"](weights, changed, ns["n_head"])[0]
    assert torch.equal(a[:-1], b[:-1])
    assert not torch.equal(a[-1], b[-1])


def test_padding_a_batch_leaves_each_names_loss_unchanged(shared):
    ns, _ = shared["load_stage5"](shared["STAGE5"], shared["DATA"])
    weights = shared["tensors_of"](ns["state_dict"])
    docs = ["al", "christopher", "zoe"]
    token_lists = [ns["encode"](doc) for doc in docs]
    with torch.no_grad():
        together = shared["doc_losses"](weights, *shared["batch_of"](token_lists, 16), 4)
    for doc, tokens, loss in zip(docs, token_lists, together.tolist()):
        assert loss == pytest.approx(ns["doc_loss"](tokens).data, rel=1e-12), doc


def test_bpe_tokens_join_back_into_the_name(shared):
    docs = ["anna", "annabel", "hannah", "ann", "brianna", "joanna"]
    merges, seqs = shared["learn_bpe"](docs, 4)
    assert merges[0] == (("n", "n"), 6)   # ties with ("a", "n"); the larger pair wins
    for doc, seq in zip(docs, seqs):
        assert "".join(seq) == doc
        assert shared["bpe_encode"](doc, merges) == seq
    assert sum(map(len, seqs)) < sum(map(len, docs))


def test_committed_epilogue_is_fresh():
    result = subprocess.run([sys.executable, "tools/epilogue.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_production_claim_section_cites_a_paper():
    text = (ROOT / epilogue.PROSE).read_text(encoding="utf-8")
    part3 = text[text.index("## 3. From here to production"):text.index("## 4.")]
    for section in part3.split("\n### ")[1:]:
        assert "et al. 20" in section, section.splitlines()[0]


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_in_a_fresh_kernel_at_a_small_budget(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb, _ = epilogue.build_notebook(ROOT)
    small = {"equal_steps": "3", "timing_steps": "2", "big_num_steps": "3", "num_merges": "3",
             "finetune_steps": "2"}
    ran = stages.execute_notebook(nb, ROOT / "notebooks", small, epilogue.SETTINGS, timeout=300)
    errors = [o for cell in ran.cells for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    printed = "".join(o.get("text", "") for cell in ran.cells for o in cell.get("outputs", []))
    assert "largest difference over 3 steps" in printed
    assert "samples at temperature 0.5" in printed


def test_moving_the_repository_keeps_the_epilogue_fresh_and_moves_its_links(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns(".git", "__pycache__",
                                                              ".pytest_cache"))
    moved = subprocess.run([sys.executable, "tools/repo.py", "--set", "alice/course"], cwd=root,
                           capture_output=True, text=True)
    assert moved.returncode == 0, moved.stderr
    assert "alice/course" in (root / epilogue.NOTEBOOK).read_text(encoding="utf-8")
    check = subprocess.run([sys.executable, "tools/epilogue.py", "--check"], cwd=root,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
