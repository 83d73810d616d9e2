"""No measured figure is typed by hand: the prose of the notebooks, the README's template and the
README outside its generated blocks quote results only through {{exp:KEY}} (or a generated
block), so a re-measurement can never leave a stale number behind.

A typed figure is a number with two or more decimals, or a number followed by 'nats'. Numbers
that are not measurements are allowed: every numeric literal of the stage scripts (settings
such as 0.85 or 0.08), numbers in `code`, and the few below, each with its reason."""
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_MEASURED = {   # number: why it may stand in prose
    f"{math.log(27):.2f}": "ln 27, the loss of a uniform guess over 27 tokens",
    "0.999": "Adam's usual beta2 in larger models (Kingma & Ba 2015)",
    "3.11": "the Python version",
}
FIGURE = re.compile(r"(?<![\w.{])[+\-−±]?(\d+\.\d{2,}|\d+(?:\.\d+)?(?= nats))(?![\w.])")
SOURCES = sorted((ROOT / "notebooks" / "prose").glob("*.md")) + [
    ROOT / "tools" / "templates" / "readme_concepts.md", ROOT / "README.md",
    ROOT / "notebooks" / "GLOSSARY.md"]


def script_numbers():
    numbers = set()
    for path in sorted(ROOT.glob("train*.py")):
        numbers |= set(re.findall(r"\d+\.\d+", path.read_text(encoding="utf-8")))
    return numbers


def typed_figures(text):
    """[(line, number)] of the typed figures in text, outside code and generated blocks."""
    text = re.sub(r"<!-- BEGIN generated.*?<!-- END generated[^>]*-->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    allowed = script_numbers() | set(NOT_MEASURED)
    found = []
    for match in FIGURE.finditer(text):
        if match.group(1) not in allowed:
            found.append((text[:match.start()].count("\n") + 1, match.group(0)))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_types_no_measured_figure(path):
    assert typed_figures(path.read_text(encoding="utf-8")) == []


def test_a_typed_loss_or_difference_is_caught():
    text = "Stage 3 scores 2.4317 against {{exp:ladder.s2.SHORT}}, +0.008 better, 2 nats off."
    assert [number for _, number in typed_figures(text)] == ["2.4317", "+0.008", "2"]
    assert typed_figures("`learning_rate = 0.03` and beta1 0.85, in ```x = 2.431```") == []
