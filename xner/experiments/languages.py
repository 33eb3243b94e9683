"""Language metadata (name, family, branch, script) for the languages xner's corpora cover.

The experiment report groups results by language family and by script, so that, for instance,
the Bantu languages of MasakhaNER 2.0 or the non-Latin scripts of PAN-X can be compared as a
whole. Codes are those the corpora use: ISO 639-1 for CoNLL and PAN-X (WikiANN), ISO 639-3 for
MasakhaNER 2.0. :func:`language_info` also accepts the other form of a code ("sw" for "swa",
"yor" for "yo", "pt-BR" for "pt"; codes are matched through ``langcodes``) and never fails: an
unknown code gets ``"unknown"`` metadata.

The table holds only what no code library provides: family, branch, the script name the report
groups by, and the name the corpora use for a language (MasakhaNER's "Luganda", "isiXhosa", where
CLDR says "Ganda", "Xhosa").

"branch" is the genus-level group used to compare related languages (Germanic, Bantu, Gbe, ...);
for Niger-Congo it follows the usual subgroup names (Volta-Niger, Atlantic, Mande, Gur, Kwa).
"""

from __future__ import annotations

from dataclasses import dataclass

import langcodes

UNKNOWN = "unknown"


@dataclass(frozen=True)
class LanguageInfo:
    code: str
    name: str
    family: str
    branch: str
    script: str
    # "seen" / "unseen": whether XLM-R-family encoders (XLM-R, multilingual-e5) saw it in pre-training.
    encoder: str = UNKNOWN


IE, NC, AA = "Indo-European", "Niger-Congo", "Afro-Asiatic"

# code -> (name, family, branch, script)
_TABLE: dict[str, tuple[str, str, str, str]] = {
    # CoNLL 2002/2003 and other European corpora
    "en": ("English", IE, "Germanic", "Latin"),
    "de": ("German", IE, "Germanic", "Latin"),
    "nl": ("Dutch", IE, "Germanic", "Latin"),
    "af": ("Afrikaans", IE, "Germanic", "Latin"),
    "es": ("Spanish", IE, "Romance", "Latin"),
    "fr": ("French", IE, "Romance", "Latin"),
    "it": ("Italian", IE, "Romance", "Latin"),
    "pt": ("Portuguese", IE, "Romance", "Latin"),
    "ru": ("Russian", IE, "Slavic", "Cyrillic"),
    "bg": ("Bulgarian", IE, "Slavic", "Cyrillic"),
    "el": ("Greek", IE, "Hellenic", "Greek"),
    "hi": ("Hindi", IE, "Indo-Aryan", "Devanagari"),
    "mr": ("Marathi", IE, "Indo-Aryan", "Devanagari"),
    "bn": ("Bengali", IE, "Indo-Aryan", "Bengali"),
    "ur": ("Urdu", IE, "Indo-Aryan", "Arabic"),
    "fa": ("Persian", IE, "Iranian", "Arabic"),
    # MasakhaNER 2.0
    "hau": ("Hausa", AA, "Chadic", "Latin"),
    "ibo": ("Igbo", NC, "Volta-Niger", "Latin"),
    "yor": ("Yoruba", NC, "Volta-Niger", "Latin"),
    "kin": ("Kinyarwanda", NC, "Bantu", "Latin"),
    "lug": ("Luganda", NC, "Bantu", "Latin"),
    "nya": ("Chichewa", NC, "Bantu", "Latin"),
    "sna": ("Shona", NC, "Bantu", "Latin"),
    "swa": ("Swahili", NC, "Bantu", "Latin"),
    "tsn": ("Setswana", NC, "Bantu", "Latin"),
    "xho": ("isiXhosa", NC, "Bantu", "Latin"),
    "zul": ("isiZulu", NC, "Bantu", "Latin"),
    "wol": ("Wolof", NC, "Atlantic", "Latin"),
    "bam": ("Bambara", NC, "Mande", "Latin"),
    "ewe": ("Ewe", NC, "Gbe", "Latin"),
    "fon": ("Fon", NC, "Gbe", "Latin"),
    "twi": ("Twi", NC, "Kwa", "Latin"),
    "mos": ("Mossi", NC, "Gur", "Latin"),
    "bbj": ("Ghomala'", NC, "Grassfields", "Latin"),
    "luo": ("Dholuo", "Nilo-Saharan", "Western Nilotic", "Latin"),
    "pcm": ("Nigerian Pidgin", "Creole", "English-based creole", "Latin"),
    # MasakhaNER 1.0 and other African corpora
    "amh": ("Amharic", AA, "Semitic", "Ethiopic"),
    "som": ("Somali", AA, "Cushitic", "Latin"),
    # PAN-X (WikiANN) languages of XTREME
    "ar": ("Arabic", AA, "Semitic", "Arabic"),
    "he": ("Hebrew", AA, "Semitic", "Hebrew"),
    "zh": ("Chinese", "Sino-Tibetan", "Sinitic", "Han"),
    "my": ("Burmese", "Sino-Tibetan", "Lolo-Burmese", "Myanmar"),
    "ja": ("Japanese", "Japonic", "Japanese", "Han/Kana"),
    "ko": ("Korean", "Koreanic", "Korean", "Hangul"),
    "fi": ("Finnish", "Uralic", "Finnic", "Latin"),
    "et": ("Estonian", "Uralic", "Finnic", "Latin"),
    "tr": ("Turkish", "Turkic", "Oghuz", "Latin"),
    "kk": ("Kazakh", "Turkic", "Kipchak", "Cyrillic"),
    "vi": ("Vietnamese", "Austroasiatic", "Vietic", "Latin"),
    "th": ("Thai", "Kra-Dai", "Tai", "Thai"),
    "id": ("Indonesian", "Austronesian", "Malayo-Polynesian", "Latin"),
    "ms": ("Malay", "Austronesian", "Malayo-Polynesian", "Latin"),
    "jv": ("Javanese", "Austronesian", "Malayo-Polynesian", "Latin"),
    "tl": ("Tagalog", "Austronesian", "Malayo-Polynesian", "Latin"),
    "ta": ("Tamil", "Dravidian", "South Dravidian", "Tamil"),
    "ml": ("Malayalam", "Dravidian", "South Dravidian", "Malayalam"),
    "kn": ("Kannada", "Dravidian", "South Dravidian", "Kannada"),
    "te": ("Telugu", "Dravidian", "South-Central Dravidian", "Telugu"),
    "ka": ("Georgian", "Kartvelian", "Karto-Zan", "Georgian"),
    "eu": ("Basque", "Basque (isolate)", "Basque", "Latin"),
}


# The 100 languages of CC-100, the pre-training corpus of XLM-R (Conneau et al. 2020, "Unsupervised
# Cross-lingual Representation Learning at Scale", ACL, appendix A, table 6), whose vocabulary and
# initialisation multilingual-e5 inherits (via Multilingual-MiniLM; Wang et al. 2024, "Multilingual E5
# Text Embeddings: A Technical Report", arXiv:2402.05672). Of the MasakhaNER 2.0 languages only Hausa,
# Swahili and Xhosa are in it; E5's later contrastive stage (text pairs from mC4, Wikipedia, NLLB, ...)
# may have shown it a little of others, which "seen" does not count. ISO 639-1 codes: 93, the other
# seven of the 100 are romanised or second-script variants (hi_rom, ur_rom, my_zaw, zh-Hant, ...).
CC100_LANGUAGES = frozenset(
    "af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha he hi hr hu hy id "
    "is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no om or pa pl ps pt ro ru sa sd si sk "
    "sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi zh".split()
)


def encoder_coverage(code: str) -> str:
    """``"seen"`` when ``code`` (any form) is one of XLM-R's CC-100 pre-training languages, else ``"unseen"``."""
    standard = _standard(str(code).strip().lower().replace("_", "-"))
    return "seen" if standard in CC100_LANGUAGES else "unseen"


def _standard(code: str):
    """The language subtag in its shortest standard form (``"swa"``, ``"SW"``, ``"sw-KE"`` -> ``"sw"``), or None."""
    try:
        return langcodes.Language.get(code).language
    except (langcodes.LanguageTagError, ValueError):
        return None


# The table holds one form of each code; the corpus may use the other (PAN-X "sw", MasakhaNER "swa").
_BY_STANDARD = {_standard(code): entry for code, entry in _TABLE.items()}


def _lookup(code: str):
    return _TABLE.get(code) or _BY_STANDARD.get(_standard(code))


def language_info(code: str) -> LanguageInfo:
    """Metadata of ``code`` (ISO 639-1 or 639-3, any case, optionally with a region: ``pt-BR``).

    ``code`` in the result is the code as given (lower-cased), so that it matches the records.
    An unknown code gives ``name=code`` and ``"unknown"`` family, branch and script.
    """
    key = str(code).strip().lower()
    entry = _lookup(key.replace("_", "-"))
    if entry is None:
        return LanguageInfo(key, key, UNKNOWN, UNKNOWN, UNKNOWN, encoder_coverage(key))
    return LanguageInfo(key, *entry, encoder=encoder_coverage(key))


def known_codes() -> list[str]:
    """The codes of the table (each in the form the corpora use)."""
    return sorted(_TABLE)


__all__ = ["CC100_LANGUAGES", "LanguageInfo", "UNKNOWN", "encoder_coverage", "known_codes", "language_info"]
