"""Language codes: ISO 639-1 <-> 639-3, and the codes NLLB-200 and M2M100 expect.

Code conversion and each language's usual script come from ``langcodes`` (IANA registry and CLDR
likely-subtags data). What no library knows is kept here: which member of a macrolanguage NLLB-200
was trained on (``swh`` for Swahili, ``arb`` for Arabic) and the few scripts where NLLB's choice
differs from CLDR's likely script (Korean: ``Hang``, not ``Kore``).
"""

from __future__ import annotations

from typing import Iterable, Optional

import langcodes

from dataset_builders.errors import UserError

# ISO 639-3 macrolanguage (or code) -> the NLLB-200 code of the member/script it was trained on.
NLLB_OVERRIDES = {
    "ara": "arb_Arab",
    "aze": "azj_Latn",
    "fas": "pes_Arab",
    "lav": "lvs_Latn",
    "mlg": "plt_Latn",
    "mon": "khk_Cyrl",
    "msa": "zsm_Latn",
    "nep": "npi_Deva",
    "orm": "gaz_Latn",
    "pus": "pbt_Arab",
    "sqi": "als_Latn",
    "swa": "swh_Latn",
    "uzb": "uzn_Latn",
    "zho": "zho_Hans",
    "nor": "nob_Latn",
    "kur": "kmr_Latn",
    "yid": "ydd_Hebr",
    "est": "est_Latn",
    "que": "quy_Latn",
}
# ISO 639-3 -> NLLB's script where CLDR's likely script is not the one NLLB uses.
NLLB_SCRIPTS = {"kor": "Hang", "tzm": "Tfng"}


def _language(code: str) -> langcodes.Language:
    """The ``langcodes.Language`` of a code; an unknown or malformed code is a one-line error."""
    try:
        language = langcodes.Language.get(str(code).strip())
        language.to_alpha3()  # raises for a well-formed code that names no language
    except (langcodes.LanguageTagError, LookupError, ValueError):
        kind = {2: "ISO 639-1 code", 3: "ISO 639-3 code"}.get(len(str(code).strip()), "language code")
        raise UserError(f"unknown {kind} {code!r}; give an ISO 639-1 or 639-3 language code") from None
    if not language.language:
        raise UserError(f"language code {code!r} names no language")
    return language


def to_iso3(code: str) -> str:
    """``"es"`` or ``"spa"`` -> ``"spa"``; a three-letter code is kept as given (``"swh"`` stays
    ``"swh"``, not its macrolanguage); an unknown code is an error, never a guess."""
    code = str(code).strip().lower()
    language = _language(code)
    if len(code) == 3:
        return code
    return language.to_alpha3()


def to_iso1(code: str) -> Optional[str]:
    """``"swa"`` -> ``"sw"``; None for a language without a two-letter code (``"ckb"``)."""
    language = _language(str(code).strip().lower()).language
    return language if len(language) == 2 else None


def script_of(code: str) -> str:
    """The ISO 15924 script a language is usually written in (``"ckb"`` -> ``"Arab"``), from CLDR."""
    return _language(code).maximize().script or "Latn"


def nllb_code(code: str, known: Optional[Iterable[str]] = None) -> str:
    """ISO 639-1/-3 (or an NLLB code as is) -> NLLB-200 code such as ``spa_Latn``.

    With ``known`` (the model's language tokens), the result is checked against it.
    """
    if "_" in code:
        result = code
    else:
        iso3 = to_iso3(code)
        result = NLLB_OVERRIDES.get(iso3) or f"{iso3}_{NLLB_SCRIPTS.get(iso3) or script_of(iso3)}"
    if known is not None:
        known = set(known)
        if result not in known:
            close = sorted(k for k in known if k.startswith(result.split("_")[0]))
            raise UserError(f"{code!r} maps to {result!r}, which the model does not know; close codes: {close}")
    return result


__all__ = ["NLLB_OVERRIDES", "NLLB_SCRIPTS", "nllb_code", "script_of", "to_iso1", "to_iso3"]
