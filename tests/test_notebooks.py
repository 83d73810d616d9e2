"""The companion notebooks (notebooks/train*.ipynb) never drift from the stage scripts.

They are built by tools/make_notebooks.py from each script and its prose file
(notebooks/prose/). These tests check that the committed notebooks are what the tool builds
now, with outputs from the current sources; that the script cells are the script byte for
byte; that bad prose stops the build; and that every notebook runs top to bottom in a fresh
kernel (a few training steps, headless matplotlib) and prints exactly what its script prints.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
import make_notebooks  # noqa: E402
import stages  # noqa: E402

STAGES = range(len(stages.STAGE_FILES))
NOTEBOOKS = [ROOT / "notebooks" / make_notebooks.notebook_name(i) for i in STAGES]
FEW_STEPS = 5


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def source(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def kind(cell):
    return cell["metadata"].get("microgpt", {}).get("source")


def copy_sources(tmp_path):
    """A minimal copy of the repository: scripts, prose, notebooks and their index."""
    for name in stages.STAGE_FILES:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns("exercises"))
    return tmp_path


def test_committed_notebooks_match_a_fresh_build_with_outputs_from_current_sources():
    result = subprocess.run([sys.executable, "tools/make_notebooks.py", "--check"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("i", STAGES)
def test_script_cells_joined_are_the_script_byte_for_byte(i):
    cells = load(NOTEBOOKS[i])["cells"]
    joined = "".join(source(cell) for cell in cells if kind(cell) == "script")
    assert joined == stages.read_stage(i)


@pytest.mark.parametrize("i", STAGES)
def test_every_code_cell_is_the_script_or_marked_notebook_only(i):
    for cell in load(NOTEBOOKS[i])["cells"]:
        assert cell["cell_type"] in ("code", "markdown")   # no raw cells
        if cell["cell_type"] == "code" and kind(cell) != "script":
            assert kind(cell) == "notebook-only"
            assert source(cell).startswith("# notebook-only:")


@pytest.mark.parametrize("i", STAGES)
def test_notebook_is_small_ascii_named_with_stable_ids_and_executed_outputs(i):
    path = NOTEBOOKS[i]
    assert path.name.isascii()
    assert path.stat().st_size < 1_000_000
    nb = load(path)
    ids = [cell["id"] for cell in nb["cells"]]
    assert ids == [f"stage{i}-cell{n:03d}" for n in range(len(ids))]
    meta = nb["metadata"]["microgpt"]
    assert meta["outputs_from_sha256"] == meta["source_sha256"]
    assert "version" not in nb["metadata"]["language_info"]   # nothing machine-specific
    for cell in nb["cells"]:
        assert "execution" not in cell["metadata"]   # no timestamps
    outputs = [o for cell in nb["cells"] for o in cell.get("outputs", [])]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert figures, "a committed notebook shows its plots"


def test_index_has_a_colab_badge_for_every_notebook():
    readme = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    for i in STAGES:
        url = stages.colab_url(f"notebooks/{make_notebooks.notebook_name(i)}")
        assert f"[![Open In Colab]({stages.COLAB_BADGE})]({url})" in readme
    assert f"]({stages.site_url()})" in readme   # the in-browser course


@pytest.mark.parametrize("i", STAGES)
def test_header_links_colab_and_the_stage_in_the_browser(i):
    header = source(load(NOTEBOOKS[i])["cells"][0])
    colab = stages.colab_url(f"notebooks/{make_notebooks.notebook_name(i)}")
    assert f"({colab}) [Run in your browser]({stages.site_url(f'stage{i}.html')})" in header


def test_a_section_without_prose_stops_the_build(tmp_path):
    root = copy_sources(tmp_path)
    prose = root / "notebooks" / "prose" / "train3_single_head.md"
    text = prose.read_text(encoding="utf-8")
    start = text.index("## evaluation")
    prose.write_text(text[:start] + text[text.index("## sampling"):], encoding="utf-8")
    with pytest.raises(stages.CourseError, match='section "evaluation" .* has no prose'):
        make_notebooks.build_cells(3, root)


def test_prose_for_a_section_the_script_lacks_stops_the_build(tmp_path):
    root = copy_sources(tmp_path)
    prose = root / "notebooks" / "prose" / "train0_bigram.md"
    extra = "\n## autograd: not in stage 0\n\nText.\n"
    prose.write_text(prose.read_text(encoding="utf-8") + extra, encoding="utf-8")
    with pytest.raises(stages.CourseError, match='section "autograd", which'):
        make_notebooks.build_cells(0, root)


def test_prose_for_a_part_the_section_lacks_stops_the_build(tmp_path):
    root = copy_sources(tmp_path)
    prose = root / "notebooks" / "prose" / "train5_adam.md"
    text = prose.read_text(encoding="utf-8").replace("### adam_update:", "### adam_step:")
    prose.write_text(text, encoding="utf-8")
    with pytest.raises(stages.CourseError, match='no part named "adam_step"'):
        make_notebooks.build_cells(5, root)


def test_an_unknown_figure_key_stops_the_build(tmp_path):
    root = copy_sources(tmp_path)
    prose = root / "notebooks" / "prose" / "train0_bigram.md"
    prose.write_text(prose.read_text(encoding="utf-8") + "\nIt scores {{exp:ladder.s9.1000}}.\n",
                     encoding="utf-8")
    with pytest.raises(stages.CourseError, match="unknown figure"):
        make_notebooks.build_notebook(0, root)


def test_a_figure_placeholder_becomes_the_committed_figure():
    nb = make_notebooks.build_notebook(0, ROOT)
    prose = "".join(source(cell) for cell in nb.cells if cell["cell_type"] == "markdown")
    assert stages.read_figures()["figures"]["ladder.s0.1000"] in prose
    assert "{{exp:" not in prose


def test_a_budget_name_in_a_figure_key_follows_the_experiments_plan():
    import experiments
    import experiments_report as report
    text = "{{exp:ablation.sgd.SHORT}} at {{exp:ABLATION_LONG}} steps"
    resolved = stages.fill_figures(text, "test")
    sgd = report.quotes(experiments.load_results())[f"ablation.sgd.{report.SHORT}"]
    assert resolved == f"{sgd} at {report.ABLATION_LONG:,} steps"


def test_a_planned_figure_not_measured_yet_is_marked_and_any_other_key_stops(monkeypatch):
    missing = set()
    text = stages.fill_figures("{{exp:ablation.demo_full.2000}}", "test", missing)
    assert text == "(not measured yet: ablation.demo_full.2000)"
    assert missing == {"ablation.demo_full.2000"}
    with pytest.raises(stages.CourseError, match="test: unknown figure"):
        stages.fill_figures("{{exp:ladder.s9.SHORT}}", "test")


@pytest.mark.parametrize("i", STAGES)
def test_try_it_edits_each_match_the_script_exactly_once(i):
    _, edits, _, _ = make_notebooks.try_it_spec(i)
    for old, new in edits or []:   # stage 2 runs stage 1 beside itself instead of a changed copy
        assert stages.read_stage(i).count(old) == 1
        assert old != new


@pytest.mark.parametrize("i, name", [(3, "s3_no_context"), (5, "sgd")])
def test_stage3_and_5_try_it_are_ablations_of_the_experiments(i, name):
    import experiments_report as report
    _, edits, _, copy_settings = make_notebooks.try_it_spec(i)
    ablation = report.ABLATION_BY_NAME[name]
    assert ablation.edits == edits and ablation.settings == copy_settings


def test_a_changed_figure_keeps_the_outputs():
    old = stages.read_notebook(NOTEBOOKS[3])
    nb = make_notebooks.build_notebook(3, ROOT)
    prose = [cell for cell in nb.cells if cell["cell_type"] == "markdown"]
    prose[-1]["source"] += " 9.999 ± 0.001 (3 seeds)"   # as if results.json had changed
    kept = stages.outputs_kept(nb, old)
    assert kept is not None
    assert [c.get("outputs") for c in kept.cells] == [c.get("outputs") for c in old.cells]


def test_check_fails_when_a_script_or_its_prose_changes(tmp_path):
    root = copy_sources(tmp_path)
    assert make_notebooks.check(root, STAGES) == []
    prose = root / "notebooks" / "prose" / "train2_autograd.md"
    text = prose.read_text(encoding="utf-8")
    prose.write_text(text.replace("engine", "machine", 1), encoding="utf-8")
    problems = make_notebooks.check(root, STAGES)
    assert any(p.startswith("train2_autograd.ipynb: cells differ") for p in problems)
    assert not any("outputs" in p for p in problems)   # reworded prose keeps the outputs
    script = root / "train4_multihead.py"
    script.write_text(script.read_text(encoding="utf-8") + "# one more line\n", encoding="utf-8")
    problems = make_notebooks.check(root, STAGES)
    assert any(p.startswith("train4_multihead.ipynb: cells differ") for p in problems)
    assert "train4_multihead.ipynb: outputs are missing or come from older sources" in problems
    # stage 5's last cell quotes stage 4's results: its cells are the same, its outputs stale
    assert "train5_adam.ipynb: outputs are missing or come from older sources" in problems


def test_setup_cell_downloads_the_data_from_the_repository_outside_a_checkout(tmp_path,
                                                                            monkeypatch):
    import urllib.request
    fetched = []

    def fake_urlretrieve(url, filename):   # stands in for the network
        fetched.append(url)
        shutil.copy(ROOT / filename, filename)

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_urlretrieve)
    monkeypatch.chdir(tmp_path)
    setup = source(load(NOTEBOOKS[5])["cells"][1])
    namespace = {}
    exec(setup, namespace)
    raw = f"https://raw.githubusercontent.com/{stages.GITHUB_REPO}/{stages.GITHUB_BRANCH}/"
    assert fetched == [raw + "data/names.txt", raw + "train5_adam.py"]   # the try-it cell runs it
    assert (tmp_path / "data" / "names.txt").is_file()
    assert (tmp_path / "train5_adam.py").is_file()
    assert namespace["__file__"] == os.path.join(str(tmp_path), "train5_adam.py")


def printed_by_script_cells(nb):
    text = ""
    for cell in nb.cells:
        if kind(cell) == "script":
            for output in cell.get("outputs", []):
                assert output.get("output_type") == "stream" and output["name"] == "stdout", output
                text += output["text"]
    return text


def without_timings(text):
    """The progress lines without their time per step and ETA, which differ from run to run."""
    return re.sub(r" \| [0-9.]+ ms/step \| ETA [0-9]+ s$", "", text, flags=re.M)


def run_notebook_and_script(i):
    nb = make_notebooks.build_notebook(i, ROOT)
    for cell in nb.cells:   # the try-it runs and stage 3's attention demo at FEW_STEPS too
        if cell.source.startswith("# notebook-only: try it: "):
            cell.source = re.sub(r"'--num_steps=\d+'", f"'--num_steps={FEW_STEPS}'", cell.source)
        if cell.source.startswith("# notebook-only: attention at work"):
            cell.source = re.sub(r"'num_steps': \d+", f"'num_steps': {FEW_STEPS}", cell.source)
    overrides = {"num_steps": str(FEW_STEPS)}   # edits the settings cell, as a learner would
    ran = stages.execute_notebook(nb, ROOT / "notebooks", overrides, "# === settings ===",
                                  timeout=300)
    script = subprocess.run([sys.executable, stages.STAGE_FILES[i], f"--num_steps={FEW_STEPS}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    return ran, script


@pytest.mark.slow
def test_every_notebook_runs_top_to_bottom_and_prints_what_its_script_prints(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")   # headless; inherited by the kernels
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run_notebook_and_script, STAGES))
    for i, (ran, script) in zip(STAGES, results):
        assert script.returncode == 0, script.stderr
        errors = [o for c in ran.cells for o in c.get("outputs", [])
                  if o.get("output_type") == "error"]
        assert errors == [], f"stage {i}"
        assert without_timings(printed_by_script_cells(ran)) == without_timings(script.stdout)


def test_stage3_demo_cell_trains_with_the_settings_of_the_committed_demo_runs():
    """The notebook's live demo is the experiments' seed-1 run: same steps, same settings."""
    import experiments_report as experiments
    prose = (ROOT / "notebooks" / "prose" / "train3_single_head.md").read_text(encoding="utf-8")
    demo = re.search(r"^DEMO = (\{.*?\})", prose, re.M | re.S).group(1)
    assert f"'num_steps': {experiments.DEMO_STEPS}" in demo
    for setting in experiments.DEMO_SETTINGS:
        name, value = setting.removeprefix("--").split("=")
        assert f"'{name}': {value}" in demo
    assert "'seed': 1," in demo and "'repeats.txt'" in demo
