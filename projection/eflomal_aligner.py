"""Statistical word aligner: eflomal (Östling & Tiedemann 2016), trained on the pairs it aligns.

eflomal is a Bayesian IBM-1/HMM/fertility aligner sampled with Gibbs sampling; it needs no model
download and runs on CPU, which makes it the offline default of xner. It is unsupervised: it
learns from the very sentence pairs it aligns, so the more pairs one ``align`` call receives the
better (give ``datasets.map`` a large ``batch_size``, or ``batch_size=None``), and in-domain
``extra_parallel`` text helps further (DESIGN.md: Spanish projection F1 on Europarl-NER from
about 0.83 to 0.90 with 20k Europarl pairs; out-of-domain text hardly helps).

One ``align`` call writes the pairs (and the extra text) in eflomal's format into a temporary
directory, runs eflomal once per ``runs`` (each run gives forward and reverse links), symmetrises
each run's links with ``projection.symmetrize`` and returns the links of the given pairs only.

Things eflomal does that this class guards against:

* it is stochastic and cannot be seeded: its C sampler seeds itself from ``/dev/urandom``, so two
  calls give different alignments (on 799 pairs projection F1 moves by several points). There is
  therefore no ``seed`` argument. ``runs > 1`` runs it several times and keeps the links found in
  more than half of the runs (a consensus of the symmetrised links), which steadies the output;
* eflomal splits lines on whitespace, so a word containing whitespace (or an empty word) would
  shift every later index: such words are sent as ``"▁"`` placeholders instead;
* a pair with an empty side, or a side of 1024 words or more (eflomal's ``MAX_SENT_LEN``; its
  writer silently empties such sentences), is not sent and gets ``[]``;
* it lowercases while reading (``lowercase=False`` keeps case distinctions).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from typing import Any, Optional, Sequence, Union

from projection.configured import Configured
from projection.symmetrize import METHODS, symmetrize
from projection.word_split import split_words

__all__ = ["EflomalAligner"]

Alignment = list[tuple[int, int]]
Sentence = Sequence[str]
ExtraParallel = Union[tuple[str, str], Sequence[tuple[Sentence, Sentence]], None]

_MAX_WORDS = 0x400  # eflomal's MAX_SENT_LEN: longer sentences are written as empty
_WHITESPACE = re.compile(r"\s+")
_PLACEHOLDER = "\u2581"


def _import_eflomal():
    try:
        import eflomal
    except ImportError as err:
        raise ImportError(
            "EflomalAligner needs the eflomal package (a C extension built with gcc): pip install 'xner[stat]'"
        ) from err
    return eflomal


def _line(words: Sentence) -> str:
    return " ".join(_WHITESPACE.sub(_PLACEHOLDER, w) or _PLACEHOLDER for w in words)


def _usable(src: Sentence, tgt: Sentence) -> bool:
    return 0 < len(src) < _MAX_WORDS and 0 < len(tgt) < _MAX_WORDS


def _parse_links(line: str, k: int, src_len: int, tgt_len: int, direction: str) -> Alignment:
    links = []
    for item in line.split():
        i, _, j = item.partition("-")
        link = (int(i), int(j))
        if not (0 <= link[0] < src_len and 0 <= link[1] < tgt_len):
            raise RuntimeError(
                f"eflomal's {direction} link {item!r} for sentence pair {k} is out of range "
                f"({src_len} source, {tgt_len} target words)"
            )
        links.append(link)
    return links


class EflomalAligner(Configured):
    """Align word-split sentence pairs with eflomal and symmetrise the two directions.

    Args:
        symmetrization: one of ``projection.symmetrize.METHODS``.
        extra_parallel: more training text, never aligned in the output: a pair of paths to
            line-aligned plain-text files (each line split with ``split_words``), or a list of
            ``(source_words, target_words)`` pairs. Helps when it is in-domain.
        model: 1 = IBM-1, 2 = + HMM, 3 = + fertility (eflomal's default).
        n_iterations: iterations of (IBM-1, HMM, fertility); ``None`` lets eflomal choose from
            the corpus size (``rel_iterations * 5000 / sqrt(n_sentences)`` for the last model).
        rel_iterations, n_samplers, null_prior: eflomal's settings, with its defaults.
        runs: independent eflomal runs; with more than one, a link is kept when it is in more
            than half of the runs' symmetrised alignments.
        lowercase: compare words lowercased (eflomal's own behaviour).

    ``__getstate__`` is the configuration (a list given as ``extra_parallel`` is part of it), so
    the aligner pickles cheaply for ``datasets.map(num_proc=...)`` and fingerprints stably.
    """

    def __init__(
        self,
        symmetrization: str = "grow-diag-final-and",
        extra_parallel: ExtraParallel = None,
        model: int = 3,
        n_iterations: Optional[Sequence[int]] = None,
        rel_iterations: float = 1.0,
        n_samplers: int = 3,
        null_prior: float = 0.2,
        runs: int = 1,
        lowercase: bool = True,
    ):
        if symmetrization not in METHODS:
            raise ValueError(f"unknown symmetrization {symmetrization!r}; choose among {METHODS}")
        if model not in (1, 2, 3):
            raise ValueError(f"eflomal model must be 1, 2 or 3, got {model!r}")
        if n_iterations is not None and len(n_iterations) != 3:
            raise ValueError(f"n_iterations must be (ibm1, hmm, fertility) iterations, got {n_iterations!r}")
        if runs < 1 or n_samplers < 1:
            raise ValueError(f"runs and n_samplers must be at least 1, got runs={runs}, n_samplers={n_samplers}")
        self.symmetrization = symmetrization
        self.extra_parallel = self._normalise_extra(extra_parallel)
        self.model = model
        self.n_iterations = None if n_iterations is None else [int(n) for n in n_iterations]
        self.rel_iterations = float(rel_iterations)
        self.n_samplers = int(n_samplers)
        self.null_prior = float(null_prior)
        self.runs = int(runs)
        self.lowercase = bool(lowercase)
        self._extra_lines: Optional[tuple[list[str], list[str]]] = None  # cache, not pickled

    @staticmethod
    def _normalise_extra(extra: ExtraParallel) -> Union[list[str], list[list[list[str]]], None]:
        if extra is None or len(extra) == 0:
            return None
        if len(extra) == 2 and all(isinstance(p, (str, os.PathLike)) for p in extra):
            paths = [os.path.abspath(os.fspath(p)) for p in extra]
            for p in paths:
                if not os.path.isfile(p):
                    raise FileNotFoundError(f"extra_parallel file not found: {p}")
            return paths
        pairs = []
        for k, pair in enumerate(extra):
            if len(pair) != 2 or any(isinstance(side, str) for side in pair):
                raise TypeError(f"extra_parallel item {k} must be a (source_words, target_words) pair, got {pair!r}")
            pairs.append([list(pair[0]), list(pair[1])])
        return pairs

    @property
    def config(self) -> dict[str, Any]:
        """The settings (JSON-friendly): what dataset/model cards record and fingerprints hash."""
        return {
            "symmetrization": self.symmetrization,
            "extra_parallel": self.extra_parallel,
            "model": self.model,
            "n_iterations": self.n_iterations,
            "rel_iterations": self.rel_iterations,
            "n_samplers": self.n_samplers,
            "null_prior": self.null_prior,
            "runs": self.runs,
            "lowercase": self.lowercase,
        }

    def __repr__(self) -> str:
        config = dict(self.config)
        if self.extra_parallel is not None and not isinstance(self.extra_parallel[0], str):
            config["extra_parallel"] = f"<{len(self.extra_parallel)} pairs>"
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in config.items())})"

    # ------------------------------------------------------------------ training text

    def _extra(self) -> tuple[list[str], list[str]]:
        """Extra training lines (source, target), read and split once per object; pairs eflomal
        cannot use (an empty or too long side) are left out."""
        if self._extra_lines is None:
            if self.extra_parallel is None:
                pairs: list = []
            elif isinstance(self.extra_parallel[0], str):
                sides = []
                for path in self.extra_parallel:
                    # only "\n" ends a line: str.splitlines would also split at U+2028, U+0085...
                    with open(path, encoding="utf-8", newline="\n") as f:
                        sides.append([split_words(line) for line in f])
                if len(sides[0]) != len(sides[1]):
                    raise ValueError(
                        f"extra_parallel files are not line-aligned: {self.extra_parallel[0]} has "
                        f"{len(sides[0])} lines, {self.extra_parallel[1]} has {len(sides[1])}"
                    )
                pairs = list(zip(*sides))
            else:
                pairs = self.extra_parallel
            pairs = [(s, t) for s, t in pairs if _usable(s, t)]
            self._extra_lines = ([_line(s) for s, _ in pairs], [_line(t) for _, t in pairs])
        return self._extra_lines

    # ------------------------------------------------------------------ alignment

    def align(self, src_sents: Sequence[Sentence], tgt_sents: Sequence[Sentence]) -> list[Alignment]:
        """Sorted ``(i, j)`` links (source word i, target word j) for each sentence pair."""
        if len(src_sents) != len(tgt_sents):
            raise ValueError(
                f"got {len(src_sents)} source sentences but {len(tgt_sents)} target sentences; they must be parallel"
            )
        for side, sents in (("source", src_sents), ("target", tgt_sents)):
            for k, sent in enumerate(sents):
                if isinstance(sent, str) or not all(isinstance(w, str) for w in sent):
                    raise TypeError(f"{side} sentence {k} must be a list of words (str), got {sent!r}")
        eflomal = _import_eflomal()
        usable = [k for k, (s, t) in enumerate(zip(src_sents, tgt_sents)) if _usable(s, t)]
        out: list[Alignment] = [[] for _ in src_sents]
        if not usable:
            return out
        extra_src, extra_tgt = self._extra()
        src_lines = [_line(src_sents[k]) for k in usable] + extra_src
        tgt_lines = [_line(tgt_sents[k]) for k in usable] + extra_tgt
        votes: Counter = Counter()
        with tempfile.TemporaryDirectory(prefix="xner-eflomal-") as tmp:
            src_file, tgt_file = os.path.join(tmp, "source"), os.path.join(tmp, "target")
            for path, lines in ((src_file, src_lines), (tgt_file, tgt_lines)):
                sents, index = eflomal.read_text(lines, self.lowercase, 0, 0)
                with open(path, "wb") as f:
                    eflomal.write_text(f, tuple(sents), len(index))
            for run in range(self.runs):
                fwd_file, rev_file = os.path.join(tmp, f"forward{run}"), os.path.join(tmp, f"reverse{run}")
                eflomal.align(
                    src_file,
                    tgt_file,
                    links_filename_fwd=fwd_file,
                    links_filename_rev=rev_file,
                    model=self.model,
                    n_iterations=None if self.n_iterations is None else tuple(self.n_iterations),
                    n_samplers=self.n_samplers,
                    quiet=True,
                    rel_iterations=self.rel_iterations,
                    null_prior=self.null_prior,
                )
                with open(fwd_file, encoding="ascii") as f, open(rev_file, encoding="ascii") as r:
                    fwd_lines, rev_lines = f.read().splitlines(), r.read().splitlines()
                if len(fwd_lines) != len(src_lines) or len(rev_lines) != len(src_lines):
                    raise RuntimeError(
                        f"eflomal wrote {len(fwd_lines)} forward and {len(rev_lines)} reverse link lines "
                        f"for {len(src_lines)} sentence pairs"
                    )
                for row, k in enumerate(usable):
                    m, n = len(src_sents[k]), len(tgt_sents[k])
                    links = symmetrize(
                        _parse_links(fwd_lines[row], k, m, n, "forward"),
                        _parse_links(rev_lines[row], k, m, n, "reverse"),
                        m,
                        n,
                        self.symmetrization,
                    )
                    votes.update((k, i, j) for i, j in links)
        for (k, i, j), count in votes.items():
            if 2 * count > self.runs:
                out[k].append((i, j))
        for links in out:
            links.sort()
        return out
