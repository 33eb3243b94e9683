"""Language codes: ISO 639-1 <-> 639-3, and the codes NLLB-200 and M2M100 expect."""

from __future__ import annotations

from typing import Iterable, Optional

# ISO 639-1 -> ISO 639-3 for the languages xner's corpora and common MT models cover.
ISO1_TO_ISO3 = {
    "af": "afr", "am": "amh", "ar": "ara", "az": "aze", "be": "bel", "bg": "bul", "bm": "bam", "bn": "ben",
    "bs": "bos", "ca": "cat", "cs": "ces", "cy": "cym", "da": "dan", "de": "deu", "ee": "ewe", "el": "ell",
    "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "eus", "fa": "fas", "fi": "fin", "fr": "fra",
    "ga": "gle", "gl": "glg", "gu": "guj", "ha": "hau", "he": "heb", "hi": "hin", "hr": "hrv", "hu": "hun",
    "hy": "hye", "id": "ind", "ig": "ibo", "is": "isl", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat",
    "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ky": "kir", "lg": "lug", "ln": "lin", "lo": "lao",
    "lt": "lit", "lv": "lav", "mg": "mlg", "mk": "mkd", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "msa",
    "mt": "mlt", "my": "mya", "ne": "nep", "nl": "nld", "no": "nob", "ny": "nya", "om": "orm", "pa": "pan",
    "pl": "pol", "ps": "pus", "pt": "por", "ro": "ron", "ru": "rus", "rw": "kin", "sk": "slk", "sl": "slv",
    "sn": "sna", "so": "som", "sq": "sqi", "sr": "srp", "sv": "swe", "sw": "swa", "ta": "tam", "te": "tel",
    "tg": "tgk", "th": "tha", "tn": "tsn", "tl": "tgl", "tr": "tur", "tw": "twi", "uk": "ukr", "ur": "urd",
    "uz": "uzb", "vi": "vie", "wo": "wol", "xh": "xho", "yo": "yor", "zh": "zho", "zu": "zul",
}  # fmt: skip
ISO3_TO_ISO1 = {v: k for k, v in ISO1_TO_ISO3.items()}

# Where NLLB-200 uses a specific member of a macrolanguage, or a script must be chosen.
NLLB_OVERRIDES = {
    "ara": "arb_Arab", "aze": "azj_Latn", "fas": "pes_Arab", "lav": "lvs_Latn", "mlg": "plt_Latn",
    "mon": "khk_Cyrl", "msa": "zsm_Latn", "nep": "npi_Deva", "orm": "gaz_Latn", "pus": "pbt_Arab",
    "sqi": "als_Latn", "srp": "srp_Cyrl", "swa": "swh_Latn", "uzb": "uzn_Latn", "zho": "zho_Hans",
    "est": "est_Latn", "nob": "nob_Latn", "kur": "kmr_Latn", "yid": "ydd_Hebr",
}  # fmt: skip
NLLB_SCRIPTS = {
    "amh": "Ethi", "ben": "Beng", "bel": "Cyrl", "bul": "Cyrl", "ell": "Grek", "guj": "Gujr", "heb": "Hebr",
    "hin": "Deva", "hye": "Armn", "jpn": "Jpan", "kan": "Knda", "kat": "Geor", "kaz": "Cyrl", "khm": "Khmr",
    "kir": "Cyrl", "kor": "Hang", "lao": "Laoo", "mal": "Mlym", "mar": "Deva", "mkd": "Cyrl", "mya": "Mymr",
    "pan": "Guru", "rus": "Cyrl", "tam": "Taml", "tel": "Telu", "tgk": "Cyrl", "tha": "Thai", "tir": "Ethi",
    "ukr": "Cyrl", "urd": "Arab", "snd": "Arab", "sin": "Sinh",
}  # fmt: skip


def to_iso3(code: str) -> str:
    """``"es"`` or ``"spa"`` -> ``"spa"``; a code we do not know is an error, never a guess."""
    code = code.lower()
    if len(code) == 3:
        return code
    try:
        return ISO1_TO_ISO3[code]
    except KeyError:
        raise ValueError(f"unknown ISO 639-1 code {code!r}; give the ISO 639-3 code instead") from None


def to_iso1(code: str) -> Optional[str]:
    code = code.lower()
    return code if len(code) == 2 else ISO3_TO_ISO1.get(code)


def nllb_code(code: str, known: Optional[Iterable[str]] = None) -> str:
    """ISO 639-1/-3 (or an NLLB code as is) -> NLLB-200 code such as ``spa_Latn``.

    With ``known`` (the model's language tokens), the result is checked against it.
    """
    if "_" in code:
        result = code
    else:
        iso3 = to_iso3(code)
        result = NLLB_OVERRIDES.get(iso3) or f"{iso3}_{NLLB_SCRIPTS.get(iso3, 'Latn')}"
    if known is not None:
        known = set(known)
        if result not in known:
            close = sorted(k for k in known if k.startswith(result.split("_")[0]))
            raise ValueError(f"{code!r} maps to {result!r}, which the model does not know; close codes: {close}")
    return result
