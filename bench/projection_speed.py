"""Sentences per second of span projection on Europarl-NER, alignment excluded.

Projects the gold English entities of Europarl-NER onto the parallel Spanish (or German)
sentences, repeated to ``--rows`` rows, in batches of ``--batch-size`` (the ``datasets.map``
default is 1000), in this one process. Timed: one projection call per batch, from Python lists
in to spans, IOB2 tags and stats out; the best of ``--repeats`` passes is reported (the CPU may be
shared). Also reported: projection F1 against the target file's gold spans (exact span and type,
micro-averaged over the distinct sentences), a sanity check that the fast path is the right one.

Alignments come from ``projection.eflomal_aligner.EflomalAligner().align(src, tgt)`` trained on
the distinct sentence pairs when that module is importable; otherwise from a deterministic
stand-in (say which in the output): each source word links to the target word with the same
case-folded text nearest the diagonal, or else to the diagonal position
``round(i * (T - 1) / (S - 1))``. The stand-in gives lower F1, but a realistic number of links
per sentence, which is what the speed depends on.

The last line of output is one JSON object: ``{"sentences_per_s": {"heuristic": X, "greedy": Y}}``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Optional

from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data
from dataset_builders.schemes import tags_to_spans
from projection.candidate_matching import project_candidates
from projection.heuristic import project_heuristic


def read_conll(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    """``token<TAB>tag`` lines, a blank line ends a sentence."""
    tokens, tags, words, labels = [], [], [], []
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if line.strip():
            word, tag = line.split("\t")[:2]
            words.append(word)
            labels.append(tag)
        elif words:
            tokens.append(words)
            tags.append(labels)
            words, labels = [], []
    return tokens, tags


def diagonal_alignment(src: list[str], tgt: list[str]) -> list[tuple[int, int]]:
    """The documented stand-in aligner: identical word nearest the diagonal, else the diagonal."""
    positions: dict[str, list[int]] = {}
    for j, word in enumerate(tgt):
        positions.setdefault(word.casefold(), []).append(j)
    scale = (len(tgt) - 1) / max(len(src) - 1, 1)
    links = []
    for i, word in enumerate(src):
        diagonal = i * scale
        same = positions.get(word.casefold())
        links.append((i, min(same, key=lambda j: abs(j - diagonal)) if same else round(diagonal)))
    return links


def align(src: list[list[str]], tgt: list[list[str]]) -> tuple[list[list[tuple[int, int]]], str]:
    try:
        from projection.eflomal_aligner import EflomalAligner
    except ImportError:
        stand_in = [diagonal_alignment(s, t) for s, t in zip(src, tgt)]
        return stand_in, "diagonal stand-in (projection.eflomal_aligner not importable)"
    return EflomalAligner().align(src, tgt), "eflomal (projection.eflomal_aligner.EflomalAligner)"


def span_f1(predicted: list[list[dict]], gold: list[list[dict]]) -> float:
    def keyed(rows):
        return {(k, s["start"], s["end"], s["label"]) for k, row in enumerate(rows) for s in row}

    p, g = keyed(predicted), keyed(gold)
    return 2 * len(p & g) / (len(p) + len(g)) if p or g else 1.0


def sentences_per_second(project: Callable, columns: tuple, rows: int, batch_size: int, repeats: int) -> float:
    best: Optional[float] = None
    for _ in range(repeats):
        started = time.perf_counter()
        for b in range(0, rows, batch_size):
            project(*(column[b : b + batch_size] for column in columns))
        elapsed = time.perf_counter() - started
        best = elapsed if best is None else min(best, elapsed)
    return rows / best


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(default_data_dir()) / "europarl-ner")
    parser.add_argument("--target-lang", default="es", choices=["es", "de"])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    src, src_tags = read_conll(args.data_dir / "en-europarl.test.conll02")
    tgt, tgt_tags = read_conll(args.data_dir / f"{args.target_lang}-europarl.test.conll02")
    if len(src) != len(tgt):
        raise SystemExit(f"{len(src)} English and {len(tgt)} {args.target_lang} sentences: not parallel")
    started = time.perf_counter()
    alignments, aligner = align(src, tgt)
    align_seconds = time.perf_counter() - started

    entities = [tags_to_spans(t) for t in src_tags]
    gold = [tags_to_spans(t) for t in tgt_tags]
    lengths = [len(s) for s in src]
    n = len(src)
    repeat = lambda column: [column[k % n] for k in range(args.rows)]  # noqa: E731
    columns = (repeat(entities), repeat(lengths), repeat(tgt), repeat(alignments))
    methods = {"heuristic": project_heuristic, "greedy": project_candidates}

    print(f"aligner: {aligner} ({n} pairs, {align_seconds:.1f} s, not timed below)")
    print(
        f"rows: {args.rows} (en->{args.target_lang} Europarl-NER x {args.rows / n:.1f}), "
        f"batch size {args.batch_size}, best of {args.repeats}"
    )
    print(f"{'method':<10} {'sentences/s':>12} {'F1 vs gold':>11}")
    speed = {}
    for name, project in methods.items():
        speed[name] = round(sentences_per_second(project, columns, args.rows, args.batch_size, args.repeats))
        f1 = span_f1(project(entities, lengths, tgt, alignments).spans, gold)
        print(f"{name:<10} {speed[name]:>12,} {f1:>11.3f}")
    result = {"sentences_per_s": speed}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
