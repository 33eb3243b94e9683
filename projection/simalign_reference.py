"""``simalign.SentenceAligner`` behind ``EmbeddingAligner``'s API: the reference to compare against.

``EmbeddingAligner`` promises SimAlign's alignments; tests and ``bench/align_speed.py`` check that
promise (and measure the speed-up) by running this wrapper side by side. It adds nothing to
SimAlign's algorithm: it only renames methods/output keys ("a"/"inter" -> "argmax", "i" ->
"itermax", "m"/"mwmf" -> "match", "f"/"fwd" -> "forward", "r"/"rev" -> "reverse"), loops over
pairs, and returns empty alignments for a pair with an empty side (where SimAlign raises).

No compatibility shim is needed for transformers 5: simalign 0.4 imports only classes that still
exist, and a model path that is not one of its built-in names goes through
``AutoConfig``/``AutoModel``/``AutoTokenizer``, which load local folders and Hub ids alike.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

from projection.embedding_aligner import SIMALIGN_METHODS, TOKEN_TYPES, Alignment, check_methods, check_pairs


class SimAlignReference:
    """SimAlign's ``SentenceAligner`` with the settings and method names of ``EmbeddingAligner``.

    The model loads at construction (as SimAlign does); ``device`` is a torch device string.
    """

    def __init__(
        self,
        model_name_or_path: str,
        layer: int = 8,
        token_type: str = "bpe",
        distortion: float = 0.0,
        matching_methods: Sequence[str] = ("argmax", "itermax", "match"),
        device: Optional[str] = None,
    ) -> None:
        from simalign import SentenceAligner

        from training.assets import resolve_model_name

        if token_type not in TOKEN_TYPES:
            raise ValueError(f"token_type must be one of {TOKEN_TYPES}, got {token_type!r}")
        self.matching_methods = check_methods(matching_methods)
        self._aligner = SentenceAligner(
            model=resolve_model_name(str(model_name_or_path)),  # a short asset name -> its folder
            token_type=token_type,
            distortion=distortion,
            matching_methods="".join(SIMALIGN_METHODS[m][0] for m in self.matching_methods),
            device=device or "cpu",
            layer=layer,
        )

    def get_word_aligns(
        self, src_sent: Union[str, Sequence[str]], trg_sent: Union[str, Sequence[str]]
    ) -> dict[str, Alignment]:
        """One pair, SimAlign's result under our method names (empty links if a side is empty)."""
        src = src_sent.split() if isinstance(src_sent, str) else list(src_sent)
        tgt = trg_sent.split() if isinstance(trg_sent, str) else list(trg_sent)
        if not src or not tgt:
            return {method: [] for method in self.matching_methods}
        links = self._aligner.get_word_aligns(src, tgt)
        return {method: [tuple(p) for p in links[SIMALIGN_METHODS[method][1]]] for method in self.matching_methods}

    def get_word_aligns_batch(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]]
    ) -> list[dict[str, Alignment]]:
        """``get_word_aligns`` for each pair, one SimAlign call (and forward pass) per pair."""
        check_pairs(src_sents, tgt_sents)
        return [self.get_word_aligns(src, tgt) for src, tgt in zip(src_sents, tgt_sents)]

    def align(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]], method: str = "itermax"
    ) -> list[Alignment]:
        """One method's sorted word links for each pair; the method must be among ``matching_methods``."""
        (method,) = check_methods(method)
        if method not in self.matching_methods:
            raise ValueError(f"method {method!r} is not among this aligner's matching_methods {self.matching_methods}")
        return [links[method] for links in self.get_word_aligns_batch(src_sents, tgt_sents)]


__all__ = ["SimAlignReference"]
