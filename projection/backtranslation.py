"""Back-translation (marker-based) projection as a ``datasets.map`` transform.

Alignment across languages is the weak step of projection; alignment within one language is
nearly string matching. So instead of aligning the source sentence with the target sentence X,
:class:`Backtranslate` translates the *marked* source sentence into the target language with a
markup-preserving MT system (Apertium ``-f html``), which puts the entity markers on the
translated entities itself, and then only has to align that translation M with X:

1. mark the source entities (:func:`projection.markers.mark_entities`);
2. translate the marked text into the target language (``translator.translate``);
3. read M's words and labelled spans off the markers (:func:`projection.markers.parse_marked`);
4. align M with X, same language (:class:`projection.monolingual_align.MonolingualAligner` by default);
5. project M's spans onto X with the alignment-run heuristic (:func:`projection.heuristic.project_heuristic`).

X is the ``target_column``: in translate-train, the translation of the source (then M and X come
from the same MT system and differ only where the markers changed its choices); in
translate-test, the original target sentence that was translated into the source language and
tagged there.

Columns added: ``projected_tags`` (IOB2 over ``label_names``) and ``projection_stats``, exactly as
:class:`projection.transforms.Project` writes them; ``backtranslation``, the marked MT output, for
inspection (``""`` for rows without entities, which are not translated); and
``backtranslation_issues``, the per-row counts of :data:`projection.markers.ISSUES` (entities
split by reordering, markers lost or broken). ``projection_stats.dropped`` counts every source
entity that got no span on X, whether it was lost in translation or in projection.

A batch whose translation fails is retried row by row; a row that still fails (or gets something
other than a string back), whose earlier translation failed (``translation_error``), or whose
entities do not fit its sentence or the label set, gets all-``O`` tags and the reason in
``projection_stats.error``. As for :class:`projection.transforms.Translate`, a step in which every
row failed is an error, and failed back-translations are not cached.
"""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import datasets

from projection.markers import ISSUES, mark_entities, parse_marked
from projection.monolingual_align import MonolingualAligner
from projection.transforms import STATS, MapTransform, label_errors, settle_failures, upstream_errors

logger = logging.getLogger(__name__)

__all__ = ["Backtranslate"]

BACKTRANSLATION_FAILED = "back-translation failed: "  # prefix of projection_stats.error for rows whose MT failed


class Backtranslate(MapTransform):
    """Project ``source_entities`` onto ``target_column`` words through a marked back-translation.

    Args:
        translator: object with ``translate(texts) -> texts`` that keeps the marker tags and their
            ``id`` attribute, e.g. ``ApertiumTranslator(pair, mode="html")`` into the target language.
        target_lang: language of the translation (selects the word-splitting rules).
        label_names: the output label set (IOB2 names).
        aligner: same-language aligner with ``align(src, tgt)`` (default ``MonolingualAligner()``).
        marker_tag: HTML tag of the markers; default the translator's ``marker_tag`` or ``"b"``.
        piece_distance: pieces of one entity at most this many words apart are merged (see
            :mod:`projection.markers`).
        merge_distance, length_ratio: the heuristic's parameters.
    """

    description = "back-translate and project"

    def __init__(
        self,
        translator,
        target_lang: Optional[str],
        label_names: Sequence[str],
        entities_column: str = "source_entities",
        source_column: str = "tokens",
        target_column: str = "translation_tokens",
        output_column: str = "projected_tags",
        backtranslation_column: str = "backtranslation",
        error_column: Optional[str] = "translation_error",
        aligner=None,
        marker_tag: Optional[str] = None,
        piece_distance: int = 1,
        merge_distance: int = 1,
        length_ratio: float = 0.8,
        batch_size: int = 256,
    ):
        if getattr(translator, "mode", "html") != "html":
            raise ValueError(f"the translator must keep markup (mode='html'), got mode={translator.mode!r}")
        if piece_distance < 0 or merge_distance < 0:
            raise ValueError(f"piece_distance and merge_distance must be >= 0, got {piece_distance}, {merge_distance}")
        self.translator = translator
        self.target_lang = target_lang
        self.label_names = list(label_names)
        self.entities_column, self.source_column = entities_column, source_column
        self.target_column, self.output_column = target_column, output_column
        self.backtranslation_column = backtranslation_column
        self.error_column = error_column  # rows an earlier step flagged (failed MT) are flagged here too
        self.aligner = aligner if aligner is not None else MonolingualAligner()
        self.marker_tag = marker_tag or getattr(translator, "marker_tag", "b")
        self.piece_distance = int(piece_distance)
        self.params = {"merge_distance": int(merge_distance), "length_ratio": float(length_ratio)}
        self.batch_size = batch_size

    @property
    def config(self) -> dict[str, Any]:
        return {
            "method": "backtranslation",
            "translator": getattr(self.translator, "config", repr(self.translator)),
            "aligner": getattr(self.aligner, "config", repr(self.aligner)),
            "marker_tag": self.marker_tag,
            "piece_distance": self.piece_distance,
            **self.params,
        }

    def output_features(self, features):
        return {
            self.output_column: datasets.List(datasets.ClassLabel(names=self.label_names)),
            "projection_stats": STATS,
            self.backtranslation_column: datasets.Value("string"),
            f"{self.backtranslation_column}_issues": {name: datasets.Value("int32") for name in ISSUES},
        }

    def _translate(self, texts: list[str]) -> tuple[list[str], list[str]]:
        """Translations and per-text errors; a failing batch is retried one text at a time."""

        def call(chunk: list[str]) -> list[str]:
            out = self.translator.translate(chunk)
            if len(out) != len(chunk):
                raise RuntimeError(f"translator returned {len(out)} translations for {len(chunk)} texts")
            return list(out)

        errors = [""] * len(texts)
        if not texts:
            return [], errors
        try:
            out = call(texts)
        except Exception as err:
            logger.warning("back-translation of a batch of %d failed (%s); retrying row by row", len(texts), err)
            out = []
            for k, text in enumerate(texts):
                try:
                    out.append(call([text])[0])
                except Exception as row_err:
                    out.append("")
                    errors[k] = f"{BACKTRANSLATION_FAILED}{type(row_err).__name__}: {row_err}"
        for k, text in enumerate(out):
            if not isinstance(text, str):  # one row's None fails that row alone
                out[k] = ""
                errors[k] = errors[k] or f"{BACKTRANSLATION_FAILED}the translator returned {text!r} instead of a string"
        return out, errors

    def apply(self, ds, num_proc: Optional[int] = None, **map_kwargs):
        """As ``MapTransform.apply``; every row failing is an error, failed rows are not cached."""

        def failed(split):
            return sum(e.startswith(BACKTRANSLATION_FAILED) for e in split["projection_stats"]["error"])

        def first_error(split):
            return next(e for e in split["projection_stats"]["error"] if e.startswith(BACKTRANSLATION_FAILED))

        result = super().apply(ds, num_proc=num_proc, **map_kwargs)
        return settle_failures(ds, result, failed, "back-translation", first_error)

    def __call__(self, batch, rank=None):
        from projection.heuristic import project_heuristic
        from projection.scores import validate_batch

        entities = [[dict(e) for e in row] for row in batch[self.entities_column]]
        targets = batch[self.target_column]
        n = len(targets)
        errors = [
            up or label or ""
            for up, label in zip(upstream_errors(batch, n, self.error_column), label_errors(entities, self.label_names))
        ]
        marked: dict[int, str] = {}
        for k, (tokens, row) in enumerate(zip(batch[self.source_column], entities)):
            if row and not errors[k]:
                try:
                    marked[k] = mark_entities(tokens, row, self.marker_tag)
                except ValueError as err:
                    errors[k] = f"ValueError: {err}"
        rows = list(marked)
        translations, failures = self._translate([marked[k] for k in rows])
        backtranslation = [""] * n
        issues = [dict.fromkeys(ISSUES, 0) for _ in range(n)]
        parsed: dict[int, tuple[list[str], list[dict]]] = {}
        for k, text, failure in zip(rows, translations, failures):
            backtranslation[k] = text
            if failure:
                errors[k] = failure
                continue
            words, spans, issues[k] = parse_marked(
                text, [e["label"] for e in entities[k]], self.target_lang, self.marker_tag, self.piece_distance
            )
            parsed[k] = (words, [{key: s[key] for key in ("start", "end", "label")} for s in spans])

        good = [k for k, (_, spans) in parsed.items() if spans]
        if parsed and not good:
            logger.warning(
                "no marker came back intact in a batch of %d back-translations (issues of the first: %s); "
                "does the translator keep the markers' id attribute?",
                len(parsed),
                issues[next(iter(parsed))],
            )
        links = self.aligner.align([parsed[k][0] for k in good], [targets[k] for k in good])
        checks = validate_batch(
            [parsed[k][1] for k in good], [len(parsed[k][0]) for k in good], [targets[k] for k in good], links
        )
        for k, check in zip(good, checks):
            if check is not None:
                errors[k] = check
        ok = [(k, row_links) for k, row_links, check in zip(good, links, checks) if check is None]
        result = project_heuristic(
            [parsed[k][1] for k, _ in ok],
            [len(parsed[k][0]) for k, _ in ok],
            [targets[k] for k, _ in ok],
            [row_links for _, row_links in ok],
            **self.params,
        )

        label_id = {name: i for i, name in enumerate(self.label_names)}
        tags = [[0] * len(t) for t in targets]
        stats = [
            {"entities": len(entities[k]), "projected": 0, "dropped": len(entities[k]), "error": errors[k]}
            for k in range(n)
        ]
        for (k, _), row_tags, row_stats in zip(ok, result.tags, result.stats):
            tags[k] = [label_id[t] for t in row_tags]  # every label is known: label_errors checked the types
            stats[k]["projected"] = row_stats["projected"]
            stats[k]["dropped"] = len(entities[k]) - row_stats["projected"]
        return {
            self.output_column: tags,
            "projection_stats": stats,
            self.backtranslation_column: backtranslation,
            f"{self.backtranslation_column}_issues": issues,
        }
