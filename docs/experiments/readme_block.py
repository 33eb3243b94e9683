"""Rebuild the reports of the offline experiments and README.md's measured-results block from them.

    python docs/experiments/readme_block.py     # after `xner experiment run configs/<name>.yaml` for each
    python docs/experiments/readme_block.py --charts-only   # redraw the charts from the stored report.json

For each offline config: ``xner experiment report`` of its results store into
``docs/experiments/<name>/`` (report.md, report.json, charts), then the README block between the
``experiment-results`` markers is rewritten from those reports: the overview table, the findings
and the charts, all generated from the stored numbers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START, END = "<!-- experiment-results -->", "<!-- /experiment-results -->"
# Report name -> (experiment file, title). The English-MiniLM runs (configs/minilm/); the multilingual-e5
# runs of configs/*.yaml join here, as the headline, once they have run.
CONFIGS = {
    "offline-europe": ("configs/minilm/offline-europe.yaml", "Question 1: English -> Spanish, Dutch, German"),
    "offline-africa": ("configs/minilm/offline-africa.yaml", "Question 1: English -> seven MasakhaNER 2.0 languages"),
    "conll2003": ("configs/minilm/conll2003.yaml", "Question 2: English students on CoNLL-2003"),
}


def section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    return match.group(1).strip() if match else ""


def artifact_minutes(name: str) -> float:
    """Wall time of the experiment's teacher trainings and projections (their xner-run.json markers)."""
    sys.path.insert(0, REPO)
    from xner.experiments.config import load_experiment
    from xner.experiments.plan import plan, sweep_results_of
    from xner.experiments.runner import MARKER, artifact_dir
    from xner.experiments.store import read_records

    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        experiment = load_experiment(CONFIGS[name][0])
        runs, _ = plan(
            experiment, records=read_records(experiment.results_path), sweep_results=sweep_results_of(experiment)
        )
        seconds = 0.0
        for run in runs:
            if run.kind in ("teacher-train", "projection"):
                with open(os.path.join(artifact_dir(experiment, run), MARKER), encoding="utf-8") as handle:
                    seconds += json.load(handle)["wall_time_s"]
    finally:
        os.chdir(cwd)
    return seconds / 60


def block(name: str, title: str) -> str:
    store = os.path.join("xner-output", "experiments", name, "results.jsonl")
    out = os.path.join("docs", "experiments", name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "xner",
            "experiment",
            "report",
            store,
            "--output_dir",
            out,
            "--title",
            f"{name} -- {title}",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with open(os.path.join(REPO, out, "report.md"), encoding="utf-8") as handle:
        markdown = handle.read()
    with open(os.path.join(REPO, out, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    compute = report["summary"]["compute"]
    overview = section(markdown, "Overview").split("\n\n", 1)[-1]
    charts = [f"![{c}]({out}/{entry['file']})" for c, entry in report.get("charts", {}).items() if entry.get("file")]
    lines = [
        f"#### {title} (`{CONFIGS[name][0]}`)",
        "",
        "```console",
        f"$ xner experiment run {CONFIGS[name][0]}",
        f"$ xner experiment report {store} --output_dir {out}",
        "```",
        "",
        f"{compute['runs']} recorded runs (evaluations, students, sweep trials): {compute['wall_time_s'] / 60:.0f} min "
        f"of wall time on 2 CPU cores, {compute['wall_time_s'] / 60 + artifact_minutes(name):.0f} min with the "
        f"teachers' training and projection; peak RSS {compute['peak_rss_mb']:.0f} MB. Full report: "
        f"[{out}/report.md]({out}/report.md).",
        "",
        "F1 (%), mean ± std over seeds (number of seeds in brackets):",
        "",
        overview,
        "",
        "Findings (generated from the numbers):",
        "",
        section(markdown, "Findings"),
        "",
        " ".join(charts[:2]),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    if "--charts-only" in sys.argv[1:]:
        sys.path.insert(0, REPO)
        from xner.experiments.report import redraw_charts

        for name in CONFIGS:
            drawn = redraw_charts(os.path.join(REPO, "docs", "experiments", name))
            print(f"{name}: {sorted(c['file'] for c in drawn.values() if c['file'])}")
        return
    body = "\n".join(block(name, title) for name, (_, title) in CONFIGS.items())
    path = os.path.join(REPO, "README.md")
    with open(path, encoding="utf-8") as handle:
        readme = handle.read()
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md needs the markers {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"{head}{START}\n\n{body}\n{END}{tail}")
    print(f"README.md: {len(CONFIGS)} experiment blocks written")


if __name__ == "__main__":
    main()
