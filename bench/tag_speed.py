"""Word-level tagging speed: xner's one inference core against ``transformers.pipeline``.

One token classifier, the offline MiniLM (``xner.assets.minilm_path()``) fine-tuned briefly on
CoNLL-2003 English train by xner's own loop (``--train-samples`` sentences, one epoch, under a
minute on a CPU core; ``--model DIR`` reuses a trained folder instead), tags the same
``--sentences`` CoNLL-2003 test sentences twice, in one run:

* ``xner``: :class:`training.inference.WordTagger` (first sub-token per word, windows sorted by
  length and batched, ``torch.inference_mode``), words in, per-word probabilities and tags out;
* ``pipeline``: ``transformers.pipeline("token-classification", aggregation_strategy="first")``
  on the sentences' text (words joined by spaces), as a user would call it (its default batch
  size unless ``--pipeline-batch-size``).

The test split has 3,453 sentences: for more, it is cycled. Timed: the tagging calls only (model
loading excluded for both). Checked: where the pipeline's own word split equals the CoNLL words
(both then tag each word by its first sub-token), both must give the same entity spans (character
offsets and type); the number of sentences compared and any mismatch are printed.

Example (what the README reports)::

    OMP_NUM_THREADS=1 nice python bench/tag_speed.py --threads 1

The last line is one JSON object: ``{"sentences_per_s": {"xner": X, "pipeline": Y}, "speedup": R}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from dataset_builders.corpora import default_data_dir  # $XNER_DATA_DIR, else ../shared/data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder holding conll2003/ (default: $XNER_DATA_DIR or ../shared/data)",
    )
    parser.add_argument(
        "--sentences", type=int, default=5000, help="CoNLL-2003 test sentences to tag (cycled past 3,453)"
    )
    parser.add_argument("--model", help="a trained token-classification folder (default: fine-tune MiniLM here)")
    parser.add_argument(
        "--train-samples", type=int, default=800, help="CoNLL-2003 train sentences for the brief fine-tune"
    )
    parser.add_argument("--batch-size", type=int, default=64, help="xner: windows per forward pass")
    parser.add_argument(
        "--pipeline-batch-size", type=int, help="pipeline: its batch_size (default: the pipeline's own)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own; use 1 on a shared CPU)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def fine_tune(data_dir: str, samples: int, output_dir: str, seed: int) -> str:
    """MiniLM + a CoNLL head trained for one epoch on ``samples`` train sentences, saved with its tokenizer."""
    from accelerate.utils import set_seed

    from dataset_builders import load_corpus
    from training.collate import TokenCollator, build_dataloader
    from training.features import TokenAligner, tokenize_dataset
    from training.inference import load_tokenizer
    from training.loop import LoopConfig, make_accelerator, train
    from training.students import build_student
    from training.teacher import token_cross_entropy
    from xner.assets import minilm_path

    data = load_corpus("conll2003", data_dir=data_dir, splits=["train"])["train"]
    data = data.shuffle(seed=seed).select(range(min(samples, len(data))))
    names = data.features["ner_tags"].feature.names
    tokenizer = load_tokenizer(minilm_path())
    features = tokenize_dataset(data, TokenAligner(tokenizer, label_column="ner_tags"), desc="tokenising")
    config = LoopConfig(output_dir=output_dir, num_train_epochs=1, learning_rate=1e-4)
    accelerator = make_accelerator(config)
    set_seed(seed)
    model = build_student(minilm_path(), names)
    loader = build_dataloader(features, 16, TokenCollator(tokenizer.pad_token_id), shuffle=True, seed=seed)
    started = time.perf_counter()
    train(model, loader, token_cross_entropy, config, accelerator, tokenizer=tokenizer)
    print(f"fine-tuned MiniLM on {len(data)} sentences in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return output_dir


def test_sentences(data_dir: str, n: int) -> list[list[str]]:
    from dataset_builders import load_corpus

    test = load_corpus("conll2003", data_dir=data_dir, splits=["test"])["test"]["tokens"]
    return [list(test[i % len(test)]) for i in range(n)]


def char_spans(words: list[str], spans: list[dict]) -> set[tuple[int, int, str]]:
    """Word spans -> ``(start_char, end_char, type)`` in ``" ".join(words)``."""
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    return {(starts[s["start"]], starts[s["end"] - 1] + len(words[s["end"] - 1]), s["label"]) for s in spans}


def same_words(pre_tokenizer, words: list[str]) -> bool:
    """Whether the pipeline's tokenizer splits the joined text into exactly these words."""
    return [piece for piece, _ in pre_tokenizer.pre_tokenize_str(" ".join(words))] == list(words)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import pipeline

    from dataset_builders.schemes import tags_to_spans
    from training.inference import WordTagger

    sentences = test_sentences(args.data_dir, args.sentences)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = args.model or fine_tune(args.data_dir, args.train_samples, scratch, args.seed)

        tagger = WordTagger.from_pretrained(model_dir, device="cpu", batch_size=args.batch_size)
        started = time.perf_counter()
        _, xner_tags = tagger(sentences)
        xner_seconds = time.perf_counter() - started

        extra = {"batch_size": args.pipeline_batch_size} if args.pipeline_batch_size else {}
        ner = pipeline("token-classification", model=model_dir, aggregation_strategy="first", device="cpu")
        texts = [" ".join(words) for words in sentences]
        started = time.perf_counter()
        pipe_out = ner(texts, **extra)
        pipe_seconds = time.perf_counter() - started

    pre_tokenizer = tagger.tokenizer.backend_tokenizer.pre_tokenizer
    compared, mismatches = 0, []
    for words, tags, entities in zip(sentences, xner_tags, pipe_out):
        if not same_words(pre_tokenizer, words):
            continue
        compared += 1
        ours = char_spans(words, tags_to_spans(tags))
        theirs = {(e["start"], e["end"], e["entity_group"]) for e in entities}
        if ours != theirs:
            mismatches.append({"words": words, "xner": sorted(ours), "pipeline": sorted(theirs)})
    entities = sum(len(tags_to_spans(t)) for t in xner_tags)
    print(
        f"{len(sentences)} sentences, {sum(map(len, sentences))} words, {entities} entities (xner); "
        f"spans compared on the {compared} sentences whose words both taggers split alike: "
        f"{len(mismatches)} differ",
        file=sys.stderr,
    )
    for mismatch in mismatches[:5]:
        print(json.dumps(mismatch, ensure_ascii=False), file=sys.stderr)
    assert compared >= len(sentences) // 4, f"only {compared} sentences comparable"
    assert not mismatches, f"{len(mismatches)} sentences with different entity spans"
    rates = {"xner": round(len(sentences) / xner_seconds, 1), "pipeline": round(len(sentences) / pipe_seconds, 1)}
    print(json.dumps({"sentences_per_s": rates, "speedup": round(rates["xner"] / rates["pipeline"], 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
