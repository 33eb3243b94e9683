"""Machine translation with any transformers seq2seq model: NLLB-200, M2M100, Marian, ...

Sentences are translated in batches sorted by length (less padding, fewer wasted decoder steps)
and returned in input order. The model loads lazily and only the configuration is pickled, so
the translator hashes to a stable datasets fingerprint and works under ``num_proc`` or
``with_rank`` (one GPU per rank).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

from projection.languages import nllb_code, to_iso1
from projection.model_errors import model_load_error

logger = logging.getLogger(__name__)


class HFTranslator:
    """``HFTranslator("facebook/nllb-200-distilled-600M", "en", "es").translate(["Hello ."])``.

    Language codes may be ISO 639-1 or 639-3 (mapped to the model's own: ``spa_Latn`` for NLLB,
    ``es`` for M2M100) or the model's codes as they are. Models without language codes (Marian
    pair models) ignore them.
    """

    def __init__(
        self,
        model_name_or_path: str,
        src_lang: str,
        tgt_lang: str,
        batch_size: int = 16,
        num_beams: int = 4,
        max_length: int = 256,
        device: Optional[str] = None,
        dtype: Optional[str] = None,
    ):
        if batch_size < 1 or num_beams < 1 or max_length < 1:
            raise ValueError("batch_size, num_beams and max_length must be positive")
        self.model_name_or_path = model_name_or_path
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.batch_size, self.num_beams, self.max_length = batch_size, num_beams, max_length
        self.device, self.dtype = device, dtype
        self._model = self._tokenizer = None
        self._forced_bos: Optional[int] = None

    @property
    def config(self) -> dict:
        return {
            "translator": "hf",
            "model": self.model_name_or_path,
            "src_lang": self.src_lang,
            "tgt_lang": self.tgt_lang,
            "num_beams": self.num_beams,
            "max_length": self.max_length,
        }

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_model"] = state["_tokenizer"] = state["_forced_bos"] = None
        return state

    def _load(self, device: Optional[str] = None):
        if self._model is not None and device is None:
            return
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if device is None:
            from accelerate import PartialState

            device = self.device or str(PartialState().device)
        dtype = getattr(torch, self.dtype) if self.dtype else None
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model_name_or_path)
            model = AutoModelForSeq2SeqLM.from_pretrained(self.model_name_or_path, dtype=dtype)
        except (OSError, ValueError) as err:  # no such folder or Hub id, not a seq2seq model, offline
            raise model_load_error("translator", self.model_name_or_path, err) from err
        model = model.to(device).eval()
        self._forced_bos = self._set_languages(tokenizer)
        self._model, self._tokenizer = model, tokenizer

    def _set_languages(self, tokenizer) -> Optional[int]:
        """Set the tokenizer's source language; return the target language's forced BOS id, if any."""
        kind = type(tokenizer).__name__
        if kind.startswith("Nllb"):
            known = [t for t in tokenizer.get_vocab() if len(t) == 8 and t[3] == "_"]
            tokenizer.src_lang = nllb_code(self.src_lang, known)
            return tokenizer.convert_tokens_to_ids(nllb_code(self.tgt_lang, known))
        if kind.startswith("M2M100"):
            src, tgt = to_iso1(self.src_lang) or self.src_lang, to_iso1(self.tgt_lang) or self.tgt_lang
            tokenizer.src_lang = src
            return tokenizer.get_lang_id(tgt)
        return None

    def translate(self, texts: Sequence[str], device: Optional[str] = None) -> list[str]:
        """Translate ``texts``; empty strings come back empty without a model call."""
        import torch

        self._load(device)
        order = sorted((i for i, t in enumerate(texts) if t.strip()), key=lambda i: -len(texts[i]))
        out = [""] * len(texts)
        # Never ask for more positions than the model has (small models have few).
        max_length = min(
            self.max_length, getattr(self._model.config, "max_position_embeddings", None) or self.max_length
        )
        gen_kwargs = {"num_beams": self.num_beams, "max_length": max_length}
        if self._forced_bos is not None:
            gen_kwargs["forced_bos_token_id"] = self._forced_bos
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self._tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_length
            ).to(self._model.device)
            with torch.inference_mode():
                generated = self._model.generate(**enc, **gen_kwargs)
            for i, text in zip(idx, self._tokenizer.batch_decode(generated, skip_special_tokens=True)):
                out[i] = text.strip()
        return out
