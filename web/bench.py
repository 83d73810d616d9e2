"""Benchmark of the in-browser course, written to benchmarks/browser.json: the per-step time of
stages 2 and 5 in headless Chromium (Pyodide) over native CPython's, both measured now and back
to back on this machine; the cold start to "Python ready" of a fresh browser (empty cache); and
the size of the built site.

    python web/bench.py [--steps 200] [--cold 3]

The per-step time is the last progress line's ms/step, the mean over the training steps; each
stage runs natively, then in the page, twice, and the ratio is of the medians.
"""
import argparse
import json
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import browser
import build_site as build

import stages  # tools/stages.py, found through web/build_site.py

STAGES = [2, 5]
MS_PER_STEP = re.compile(r"^step .* \| ([\d.]+) ms/step \| ETA \d+ s$", re.M)   # the last column


def ms_per_step(output):
    found = MS_PER_STEP.findall(output)
    if not found:
        raise stages.CourseError(f"no progress line in:\n{output}")
    return float(found[-1])


def native(i, argv):
    status, out, err, _, _ = stages.run_child([sys.executable, str(stages.stage_path(i)), *argv],
                                              stages.ROOT)
    if status:
        raise stages.CourseError(f"{stages.STAGE_FILES[i]} failed: {err}")
    return ms_per_step(out)


def in_page(chromium, base, i, settings):
    blocked = []
    context = browser.offline_context(chromium, blocked)
    page = context.new_page()
    page.goto(f"{base}stage{i}.html")
    browser.wait_ready(page)
    out, status = browser.run_stage(page, settings, timeout_s=600)
    context.close()
    blocked = set(blocked) - {stages.COLAB_BADGE}   # the notebooks' badge images
    if not status.endswith("exit status 0") or blocked:
        raise stages.CourseError(f"stage {i} in the page: {status}; blocked {blocked}")
    return ms_per_step(out)


def cold_start(chromium, base):
    context = browser.offline_context(chromium, [])   # a new context: an empty cache
    page = context.new_page()
    page.goto(base)
    seconds = browser.wait_ready(page)
    context.close()
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--cold", type=int, default=3, help="cold starts to time")
    parser.add_argument("--out", type=Path, default=stages.ROOT / "benchmarks" / "browser.json")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright
    settings = {"num_steps": args.steps, "num_samples": 0}
    argv = [f"--{name}={value}" for name, value in settings.items()]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as site, sync_playwright() as playwright:
        build.build(Path(site))
        size = sum(f.stat().st_size for f in Path(site).rglob("*") if f.is_file())
        server, base = browser.serve(site)
        chromium = browser.launch(playwright)
        cold = [cold_start(chromium, base) for _ in range(args.cold)]
        per_step = {}
        for i in STAGES:
            runs = {"native": [], "browser": []}
            for _ in range(2):
                runs["native"].append(native(i, argv))
                runs["browser"].append(in_page(chromium, base, i, settings))
                print(f"stage {i}: {runs}", flush=True)
            ratio = statistics.median(runs["browser"]) / statistics.median(runs["native"])
            per_step[f"stage{i}"] = {"ms_per_step": runs, "ratio": round(ratio, 2)}
        chromium.close()
        server.shutdown()
    result = {
        "what": f"{args.steps} training steps, num_samples=0; ms/step of the last progress line",
        "per_step": per_step,
        "cold_start_s": cold,
        "site_mb": round(size / 1e6, 1),
        "load_average": {"before": [round(x, 2) for x in load_before],
                         "after": [round(x, 2) for x in os.getloadavg()]},
        "pyodide": json.loads((build.PYODIDE / "package.json").read_text())["version"],
        "machine": stages.machine_line(stages.machine_info()),
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    stages.run(main)
