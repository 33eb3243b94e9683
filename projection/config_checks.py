"""Checks of a projection config's components before anything runs, each failure one ``UserError``.

The keys a component accepts are read off its constructor's signature (one place for them), so a
typo in a nested YAML key (``aligner: {symetrization: ...}``) is named with the keys that exist
instead of surfacing as a ``TypeError`` deep in a run. A model given as a local path (absolute,
``./``, ``../`` or ``~``) must exist; a Hub id is checked when it loads.
"""

from __future__ import annotations

import inspect
import os
from typing import Any, Mapping, Optional

from dataset_builders.errors import UserError

# Where a model setting comes from on the command line, for the messages.
MODEL_FLAGS = {"translator": "--translator-model", "aligner": "--aligner-model", "tagger": "--tagger"}


def _parameters(cls) -> set[str]:
    return {
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def translator_keys(kind: str) -> Optional[set[str]]:
    """The keys of a translator spec of ``kind`` (None for an unknown kind)."""
    if kind == "pretranslated":
        return {"kind"}
    if kind == "hf":
        from projection.translate_hf import HFTranslator

        return {"kind", "model"} | _parameters(HFTranslator) - {"model_name_or_path", "src_lang", "tgt_lang"}
    if kind == "apertium":
        from projection.translate_apertium import ApertiumTranslator

        return {"kind"} | _parameters(ApertiumTranslator) - {"pair"}
    return None


def aligner_keys(kind: str) -> Optional[set[str]]:
    if kind == "eflomal":
        from projection.eflomal_aligner import EflomalAligner

        return {"kind"} | _parameters(EflomalAligner)
    if kind in ("embedding", "simalign"):
        if kind == "embedding":
            from projection.embedding_aligner import EmbeddingAligner as cls
        else:
            from projection.simalign_reference import SimAlignReference as cls
        return {"kind", "model", "method"} | _parameters(cls) - {"model_name_or_path"}
    if kind == "monolingual":
        from projection.monolingual_align import MonolingualAligner

        return {"kind"} | _parameters(MonolingualAligner)
    return None


def method_keys(name: str) -> Optional[set[str]]:
    if name in ("heuristic", "candidates"):
        from projection.transforms import Project

        return {"name"} | Project.PARAMS[name]
    if name == "backtranslation":
        from projection.backtranslation import Backtranslate

        fixed = {"translator", "target_lang", "label_names", "source_column", "target_column"}
        return {"name", "translator"} | _parameters(Backtranslate) - fixed
    return None


def tagger_keys() -> set[str]:
    from projection.tagging import Tag

    return {"model"} | _parameters(Tag) - {"model_name_or_path"}


def check_section(section: str, spec: Any, kind_key: Optional[str], keys_of) -> None:
    """``spec`` is a mapping whose ``kind_key`` names a known kind and whose keys that kind accepts."""
    if not isinstance(spec, Mapping):
        example = f"{{{kind_key}: ...}}" if kind_key else "{model: ...}"
        raise UserError(f"{section} must be a mapping like {example}, got {spec!r}")
    if kind_key is None:
        known = keys_of()
    else:
        if kind_key not in spec:
            raise UserError(f"{section} needs a {kind_key!r}")
        known = keys_of(spec[kind_key])
        if known is None:
            raise UserError(f"{section}: unknown {kind_key} {spec[kind_key]!r}")
    unknown = sorted(set(spec) - known)
    if unknown:
        what = f"{section} ({kind_key} {spec[kind_key]!r})" if kind_key else section
        raise UserError(f"unknown key(s) {unknown} in {what}; known: {sorted(known)}")


def check_model(section: str, spec: Mapping, required: bool) -> None:
    """A ``model`` that is needed is given, and one that is a local path exists."""
    flag = MODEL_FLAGS.get(section, "")
    model = spec.get("model")
    if model is None:
        if required:
            kind = f" kind {spec['kind']!r}" if "kind" in spec else ""
            raise UserError(f"{section}{kind} needs a model: give 'model' in the config or {flag}")
        return
    if not isinstance(model, str) or not model:
        raise UserError(f"{section} model ({flag}) must be a path or Hub id, got {model!r}")
    if model.startswith(("/", "./", "../", "~")) and not os.path.exists(os.path.expanduser(model)):
        raise UserError(f"{section} model {model!r} ({flag}): no such file or folder")


def check_components(translator: Any, aligner: Any, method: Any, tagger: Any, uses_aligner: bool) -> None:
    check_section("translator", translator, "kind", translator_keys)
    check_model("translator", translator, required=translator["kind"] == "hf")
    check_section("method", method, "name", method_keys)
    if isinstance(method.get("translator"), Mapping):
        check_section(
            "method.translator",
            method["translator"],
            None,
            lambda: translator_keys(method["translator"].get("kind", "apertium")) or {"kind"},
        )
    if uses_aligner:
        check_section("aligner", aligner, "kind", aligner_keys)
        check_model("aligner", aligner, required=aligner["kind"] in ("embedding", "simalign"))
    if tagger is not None:
        check_section("tagger", tagger, None, tagger_keys)
        check_model("tagger", tagger, required=True)
