"""Embedding word aligner: SimAlign's methods, batched over many sentence pairs.

SimAlign (Jalili Sabet et al. 2020) aligns the words of two sentences through the cosine
similarity of their contextual embeddings from one layer of a multilingual encoder. Its
``SentenceAligner`` runs one forward pass per sentence pair and computes the "match" method with
networkx's general-graph blossom algorithm, which makes it slow on whole datasets. This module
computes the same alignments:

* many sentences per forward pass (source and target sentences pooled, sorted by subword count
  so that padding stays small); the encoder layers above ``layer`` are not run where they cannot
  change ``hidden_states[layer]`` (post-LayerNorm BERT-like encoders, see ``_TRUNCATABLE_MODEL_TYPES``);
* similarity matrices, argmax and itermax for a whole chunk of pairs as padded tensor operations;
* "match" with ``scipy.optimize.linear_sum_assignment`` (see ``max_weight_match``).

Everything SimAlign does is reproduced on purpose, quirks included, so that its published
settings mean the same here (``tests/test_embedding_aligner.py`` checks equality with
``simalign.SentenceAligner``):

* each word is cut into subwords by ``tokenizer.tokenize(word)``; the sentence is encoded with
  ``is_split_into_words=True`` and subword vector k is hidden position ``k + 1`` (after the first
  special token) of ``hidden_states[layer]``; ``layer`` 0 is the embedding output;
* ``token_type="bpe"`` aligns subwords and maps links to words; ``"word"`` aligns the mean
  subword vector of each word;
* similarity is ``(cos + 1) / 2``, computed in float32; the distortion multiplies it by
  ``1 - ratio * (j/(n-1) - i/(m-1))**2`` (float64);
* argmax keeps mutual best links; itermax runs one more round of SimAlign's ``iter_max`` (its
  ``max_count=2``) on words left unaligned, and is plain argmax when a side has at most 2 tokens.

Where results could differ from SimAlign's: (1) a padded batched forward pass rounds differently
from SimAlign's two-sentence pass (about 1e-6), which can flip a near-tie between two
similarities; (2) an exact tie in "match" (two maximum matchings of equal weight) may be broken
differently, and networkx's float blossom algorithm is itself only optimal up to rounding.
Exact ties in argmax/itermax are broken as SimAlign breaks them (first index wins). Outside SimAlign's domain this
module does not crash where SimAlign does: an empty sentence gets no links, and in "word" mode a
word without subwords (or cut off by truncation) is left out of the matrix instead of being a NaN.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from projection.configured import Configured
from projection.model_errors import model_load_error
from training.devices import fork_safe_threads

Alignment = list[tuple[int, int]]

METHODS = ("argmax", "itermax", "match", "forward", "reverse")
# our method name -> (simalign matching_methods letter, simalign output key)
SIMALIGN_METHODS = {
    "argmax": ("a", "inter"),
    "itermax": ("i", "itermax"),
    "match": ("m", "mwmf"),
    "forward": ("f", "fwd"),
    "reverse": ("r", "rev"),
}
TOKEN_TYPES = ("bpe", "word")
# Post-LayerNorm encoders whose hidden_states[k] is just the output of layer k, so layers after
# ``layer`` can be dropped without changing it (not true of e.g. XLM-R XL, which has a final norm).
_TRUNCATABLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
# The layer used when none is given: SimAlign's 8 (mBERT, XLM-R base), except for models measured
# here to align better elsewhere (bench/projection_quality.py, Europarl-NER de/es; README
# "Multilingual encoder"). Keys: Hub ids; an xner asset's short name or folder maps to its Hub id.
DEFAULT_LAYER = 8
DEFAULT_LAYERS = {"intfloat/multilingual-e5-small": 6}  # best itermax layer on de and es
_ITERMAX_ALPHA = 0.9  # simalign.SentenceAligner.iter_max's alpha_ratio


def default_layer(model_name_or_path: str) -> int:
    """The hidden layer the aligner uses for this model when ``layer`` is not given (see ``DEFAULT_LAYERS``)."""
    from training.assets import hub_id_of

    name = str(model_name_or_path)
    return DEFAULT_LAYERS.get(name) or DEFAULT_LAYERS.get(hub_id_of(name) or "", DEFAULT_LAYER)


def check_methods(methods: Union[str, Sequence[str]]) -> tuple[str, ...]:
    """Validate method names (one name or several) and return them as a tuple without repeats."""
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown matching method(s) {unknown or methods!r}; choose among {METHODS}")
    return tuple(dict.fromkeys(methods))


def check_pairs(src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]]) -> None:
    """Fail early, with a message that says what is wrong, on input the aligners cannot use."""
    if len(src_sents) != len(tgt_sents):
        raise ValueError(
            f"got {len(src_sents)} source sentences but {len(tgt_sents)} target sentences; they must be parallel"
        )
    for side, sents in (("source", src_sents), ("target", tgt_sents)):
        for k, sent in enumerate(sents):
            if isinstance(sent, str) or not all(isinstance(w, str) for w in sent):
                raise TypeError(f"{side} sentence {k} must be a list of words (str), got {sent!r}")


# --------------------------------------------------------------------------- matrices


def pad_similarities(sims: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack m_b x n_b similarity matrices into a float64 ``[B, M, N]`` tensor padded with -inf.

    Returns the tensor and the sizes ``m``, ``n`` (``[B]`` each). Useful to run
    ``alignment_matrices`` on matrices from elsewhere (tests compare it with SimAlign's functions).
    """
    m = torch.tensor([s.shape[0] for s in sims], dtype=torch.long)
    n = torch.tensor([s.shape[1] for s in sims], dtype=torch.long)
    shape = (len(sims), max(m.tolist(), default=0), max(n.tolist(), default=0))
    out = torch.full(shape, -torch.inf, dtype=torch.float64)
    for b, s in enumerate(sims):
        out[b, : s.shape[0], : s.shape[1]] = torch.from_numpy(np.asarray(s, dtype=np.float64))
    return out, m, n


def similarity_batch(
    src: Sequence[torch.Tensor], tgt: Sequence[torch.Tensor], distortion: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SimAlign's similarity of each pair's vectors (m x D vs n x D), for a chunk of B pairs at once.

    Returns ``(sim, m, n)`` like ``pad_similarities``: ``sim[b, :m_b, :n_b]`` is
    ``(cos + 1) / 2`` in float32 (as sklearn computes it for float32 input), times the distortion
    mask in float64; padding is -inf so it never wins an argmax. Every m_b, n_b must be >= 1.
    """
    m = torch.tensor([len(x) for x in src], dtype=torch.long)
    n = torch.tensor([len(y) for y in tgt], dtype=torch.long)
    x = torch.nn.utils.rnn.pad_sequence(list(src), batch_first=True)
    y = torch.nn.utils.rnn.pad_sequence(list(tgt), batch_first=True)
    x = x / _row_norms(x)
    y = y / _row_norms(y)
    sim = ((torch.bmm(x, y.transpose(1, 2)) + 1.0) / 2.0).double()
    rows = torch.arange(sim.shape[1])[None, :, None]
    cols = torch.arange(sim.shape[2])[None, None, :]
    if distortion != 0.0:
        # SimAlign skips the distortion when either side has a single token.
        pos_i = rows.double() / (m - 1).clamp(min=1).double()[:, None, None]
        pos_j = cols.double() / (n - 1).clamp(min=1).double()[:, None, None]
        mask = 1.0 - (pos_j - pos_i) ** 2 * distortion
        applies = ((m >= 2) & (n >= 2))[:, None, None]
        sim = torch.where(applies, sim * mask, sim)
    valid = (rows < m[:, None, None]) & (cols < n[:, None, None])
    return sim.masked_fill(~valid, -torch.inf), m, n


def _row_norms(x: torch.Tensor) -> torch.Tensor:
    """Euclidean row norms, 1 for all-zero rows (padding), as ``sklearn.preprocessing.normalize``."""
    norms = x.pow(2).sum(-1, keepdim=True).sqrt()
    return norms.masked_fill(norms == 0, 1.0)


def alignment_matrices(
    sim: torch.Tensor, m: torch.Tensor, n: torch.Tensor, methods: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Boolean ``[B, M, N]`` link matrices for each method, from padded similarities (see ``similarity_batch``)."""
    rows = torch.arange(sim.shape[1])[None, :, None]
    cols = torch.arange(sim.shape[2])[None, None, :]
    valid = (rows < m[:, None, None]) & (cols < n[:, None, None])
    forward = (cols == sim.argmax(2)[:, :, None]) & valid
    reverse = (rows == sim.argmax(1)[:, None, :]) & valid
    out = {"forward": forward, "reverse": reverse, "argmax": forward & reverse}
    if "itermax" in methods:
        out["itermax"] = _itermax(sim, valid, out["argmax"], m, n)
    if "match" in methods:
        out["match"] = torch.zeros_like(valid)
        for b in range(sim.shape[0]):
            links = max_weight_match(sim[b, : m[b], : n[b]].numpy())
            out["match"][b, : m[b], : n[b]] = torch.from_numpy(links)
    return {method: out[method] for method in methods}


def _itermax(
    sim: torch.Tensor, valid: torch.Tensor, inter: torch.Tensor, m: torch.Tensor, n: torch.Tensor
) -> torch.Tensor:
    """SimAlign's ``iter_max`` (one extra round, ``max_count=2``) for all pairs of the chunk at once.

    Rows/columns with no mutual-argmax link take part in a second mutual argmax over similarities
    scaled by 0.9 where one side is already aligned and by 1.0 where neither is; only links that
    touch a free row or column are added. Skipped when a side has <= 2 tokens, or when all rows or
    all columns are already aligned, exactly as SimAlign does.
    """
    free_rows = ~inter.any(2) & valid.any(2)  # [B, M]
    free_cols = ~inter.any(1) & valid.any(1)  # [B, N]
    mask_x = free_rows.double()[:, :, None]
    mask_y = free_cols.double()[:, None, :]
    scale = (_ITERMAX_ALPHA * mask_x + _ITERMAX_ALPHA * mask_y).clamp(0.0, 1.0)
    new_sim = torch.where(valid, sim * scale, -torch.inf)
    rows = torch.arange(sim.shape[1])[None, :, None]
    cols = torch.arange(sim.shape[2])[None, None, :]
    mutual = (cols == new_sim.argmax(2)[:, :, None]) & (rows == new_sim.argmax(1)[:, None, :])
    touches_free = free_rows[:, :, None] | free_cols[:, None, :]
    active = (torch.minimum(m, n) > 2) & free_rows.any(1) & free_cols.any(1)
    return inter | (mutual & touches_free & valid & active[:, None, None])


def max_weight_match(sim: np.ndarray) -> np.ndarray:
    """SimAlign's "mwmf" links: a maximum-cardinality matching of maximum weight, as a bool matrix.

    SimAlign builds a bipartite graph from ``csr_matrix(sim)`` (so exact zeros are *missing*
    edges, which happens with ``distortion=1``: the corners get weight 0) and runs networkx's
    ``max_weight_matching(maxcardinality=True)``. The rectangular assignment problem gives the
    same optimum: missing edges get a penalty larger than any total weight, so the assignment
    first maximises the number of real edges, then their weight; penalised pairs are dropped.
    """
    missing = sim == 0
    weights = sim
    if missing.any():
        penalty = 1.0 + 2.0 * min(sim.shape) * float(np.abs(sim).max())
        weights = np.where(missing, -penalty, sim)
    rows, cols = linear_sum_assignment(weights, maximize=True)
    keep = ~missing[rows, cols]
    links = np.zeros(sim.shape, dtype=bool)
    links[rows[keep], cols[keep]] = True
    return links


# --------------------------------------------------------------------------- aligner


class EmbeddingAligner(Configured):
    """Word aligner over any Hugging Face encoder, with SimAlign's methods and results, batched.

    ``layer`` indexes ``hidden_states`` (0 = embeddings; default: ``default_layer(model)``, 8 for
    most models), ``token_type`` is ``"bpe"`` (align subwords, then map to words) or ``"word"``
    (align averaged word vectors), ``distortion`` is SimAlign's position-distortion ratio, ``matching_methods`` names what
    ``get_word_aligns``/``get_word_aligns_batch`` return: ``"argmax"`` (SimAlign "a"/"inter"),
    ``"itermax"`` ("i"), ``"match"`` ("m"/"mwmf"), ``"forward"`` ("f"), ``"reverse"`` ("r").
    ``batch_size`` is sentences per forward pass (and pairs per matrix chunk); ``device`` defaults
    to ``accelerate.PartialState().device``; ``max_length`` truncates in subwords (default: the
    tokenizer's ``model_max_length``, as SimAlign).

    The model is loaded on first use and never pickled: ``__getstate__`` is the configuration, so
    the aligner is cheap to send to ``datasets.map(num_proc=...)`` workers and its fingerprint
    does not change when it has been used. In a fork()ed worker torch is switched to one thread
    (torch's thread pool does not survive fork; see ``_ready``).
    """

    def __init__(
        self,
        model_name_or_path: str,
        layer: Optional[int] = None,
        token_type: str = "bpe",
        distortion: float = 0.0,
        matching_methods: Sequence[str] = ("argmax", "itermax", "match"),
        batch_size: int = 32,
        device: Optional[Union[str, torch.device]] = None,
        max_length: Optional[int] = None,
    ) -> None:
        if layer is None:
            layer = default_layer(model_name_or_path)
        if token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
        if not isinstance(layer, int) or layer < 0:
            raise ValueError(f"layer must be an int >= 0 (0 = embedding output), got {layer!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_length is not None and max_length < 3:
            raise ValueError(f"max_length must leave room for a subword between two special tokens, got {max_length}")
        self.model_name_or_path = str(model_name_or_path)
        self.layer = layer
        self.token_type = token_type
        self.distortion = float(distortion)
        self.matching_methods = check_methods(matching_methods)
        self.batch_size = int(batch_size)
        self.device = None if device is None else str(device)
        self.max_length = max_length
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Optional[torch.device] = None

    @property
    def config(self) -> dict[str, Any]:
        """The settings (JSON-friendly): what dataset/model cards record and fingerprints hash."""
        return {
            "model_name_or_path": self.model_name_or_path,
            "layer": self.layer,
            "token_type": self.token_type,
            "distortion": self.distortion,
            "matching_methods": list(self.matching_methods),
            "batch_size": self.batch_size,
            "device": self.device,
            "max_length": self.max_length,
        }

    # ------------------------------------------------------------------ public API

    def get_word_aligns(
        self, src_sent: Union[str, Sequence[str]], trg_sent: Union[str, Sequence[str]]
    ) -> dict[str, Alignment]:
        """One pair, like ``simalign.SentenceAligner.get_word_aligns`` (a str is split on whitespace)."""
        src = src_sent.split() if isinstance(src_sent, str) else list(src_sent)
        tgt = trg_sent.split() if isinstance(trg_sent, str) else list(trg_sent)
        return self.get_word_aligns_batch([src], [tgt])[0]

    def get_word_aligns_batch(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]]
    ) -> list[dict[str, Alignment]]:
        """For each pair, ``{method: sorted [(source word, target word), ...]}`` for ``matching_methods``."""
        return self._align(src_sents, tgt_sents, self.matching_methods)

    def align(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]], method: str = "itermax"
    ) -> list[Alignment]:
        """One method's sorted word links for each pair (computes only that method)."""
        (method,) = check_methods(method)
        return [links[method] for links in self._align(src_sents, tgt_sents, (method,))]

    # ------------------------------------------------------------------ internals

    def _ready(self) -> None:
        """Make the aligner usable in this process: load tokenizer and model on first use.

        Loading late keeps construction and pickling cheap; the thread check runs on every call
        because a forked worker may inherit an already loaded aligner without unpickling it.
        """
        fork_safe_threads()  # a forked datasets.map worker runs torch single-threaded
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        if self.device is not None:
            self._device = torch.device(self.device)
        else:
            from accelerate import PartialState

            self._device = PartialState().device
        from training.assets import resolve_model_name

        try:
            folder = resolve_model_name(self.model_name_or_path)  # a short asset name -> its folder
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModel.from_pretrained(folder)
        except (OSError, ValueError) as err:  # no such folder or Hub id, not an encoder, offline
            raise model_load_error("aligner", self.model_name_or_path, err) from err
        num_layers = getattr(model.config, "num_hidden_layers", None)
        if num_layers is not None and self.layer > num_layers:
            raise ValueError(
                f"layer={self.layer} but {self.model_name_or_path} has {num_layers} layers "
                f"(hidden_states 0..{num_layers}); pass layer= explicitly"
            )
        if model.config.model_type in _TRUNCATABLE_MODEL_TYPES and num_layers is not None:
            # At least one layer stays: hidden_states is recorded from the layers' inputs/outputs.
            model.encoder.layer = model.encoder.layer[: max(self.layer, 1)]
        self._model = model.eval().to(self._device)
        self._tokenizer = tokenizer

    def _align(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]], methods: tuple[str, ...]
    ) -> list[dict[str, Alignment]]:
        check_pairs(src_sents, tgt_sents)
        results: list[dict[str, Alignment]] = [{method: [] for method in methods} for _ in src_sents]
        if not len(src_sents):
            return results
        self._ready()
        sents = [list(s) for s in src_sents] + [list(t) for t in tgt_sents]
        vectors, positions = self._embed(sents)
        src_vec, tgt_vec = vectors[: len(src_sents)], vectors[len(src_sents) :]
        src_pos, tgt_pos = positions[: len(src_sents)], positions[len(src_sents) :]
        pairs = [k for k in range(len(src_sents)) if len(src_vec[k]) and len(tgt_vec[k])]
        pairs.sort(key=lambda k: (len(src_vec[k]), len(tgt_vec[k])))
        for start in range(0, len(pairs), self.batch_size):
            chunk = pairs[start : start + self.batch_size]
            sim, m, n = similarity_batch([src_vec[k] for k in chunk], [tgt_vec[k] for k in chunk], self.distortion)
            matrices = {method: links.numpy() for method, links in alignment_matrices(sim, m, n, methods).items()}
            for b, k in enumerate(chunk):
                for method, links in matrices.items():
                    i, j = np.nonzero(links[b])
                    results[k][method] = _word_links(src_pos[k][i], tgt_pos[k][j], len(tgt_sents[k]))
        return results

    def _embed(self, sents: list[list[str]]) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """Per sentence: the vectors to align (subwords or words) and the word index of each vector."""
        counts = self._subword_counts(sents)
        totals = [int(c.sum()) for c in counts]
        vectors: list[torch.Tensor] = [torch.zeros(0)] * len(sents)
        positions: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(sents)
        order = sorted((k for k in range(len(sents)) if totals[k]), key=lambda k: totals[k])
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                hidden, lengths = self._forward([sents[k] for k in batch])
                for b, k in enumerate(batch):
                    # SimAlign takes positions 1..1+#subwords; truncation can leave fewer.
                    subwords = hidden[b, 1 : 1 + min(totals[k], int(lengths[b]) - 2)]
                    word_of = np.repeat(np.arange(len(counts[k])), counts[k])[: len(subwords)]
                    vectors[k], positions[k] = self._word_vectors(subwords, word_of)
        return vectors, positions

    def _subword_counts(self, sents: list[list[str]]) -> list[np.ndarray]:
        """Subwords per word, as SimAlign counts them: ``len(tokenizer.tokenize(word))`` (batched once per type)."""
        types = list(dict.fromkeys(w for sent in sents for w in sent))
        encoded = self._tokenizer(types, add_special_tokens=False)["input_ids"] if types else []
        count_of = {w: len(ids) for w, ids in zip(types, encoded)}
        return [np.array([count_of[w] for w in sent], dtype=np.int64) for sent in sents]

    def _forward(self, batch: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``hidden_states[layer]`` (float32, CPU) and real lengths for a padded batch of word lists."""
        inputs = self._tokenizer(
            batch,
            is_split_into_words=True,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self._device)
        hidden = self._model(**inputs, output_hidden_states=True).hidden_states
        if self.layer >= len(hidden):
            raise ValueError(f"layer={self.layer} but the model returns {len(hidden)} hidden states")
        return hidden[self.layer].float().cpu(), inputs["attention_mask"].sum(1).cpu()

    def _word_vectors(self, subwords: torch.Tensor, word_of: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """bpe: subword vectors as they are; word: the mean over each word's subwords."""
        if self.token_type == "bpe":
            return subwords, word_of
        words, index = np.unique(word_of, return_inverse=True)
        index_t = torch.from_numpy(index)
        sums = torch.zeros(len(words), subwords.shape[1]).index_add_(0, index_t, subwords)
        sizes = torch.bincount(index_t, minlength=len(words)).unsqueeze(1)
        return sums / sizes, words


def _word_links(src_words: np.ndarray, tgt_words: np.ndarray, num_tgt_words: int) -> Alignment:
    """Distinct (source word, target word) pairs, sorted, as Python ints (like SimAlign's sorted set)."""
    keys = np.unique(src_words * num_tgt_words + tgt_words)
    return list(zip((keys // num_tgt_words).tolist(), (keys % num_tgt_words).tolist()))


__all__ = [
    "EmbeddingAligner",
    "METHODS",
    "SIMALIGN_METHODS",
    "DEFAULT_LAYERS",
    "alignment_matrices",
    "default_layer",
    "max_weight_match",
    "pad_similarities",
    "similarity_batch",
]
