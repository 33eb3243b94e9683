"""Split machine translations into words the way CoNLL corpora are tokenised.

Projection aligns the words of a translation with the words of a CoNLL sentence, and the
projected labels are only as good as the agreement between the two tokenisations: a translation
split differently from the training data (``"Smith,"`` as one word, ``"U.S."`` as three) makes
entity boundaries that no CoNLL-trained model ever sees. So this splitter follows the CoNLL-2003 /
Penn Treebank conventions rather than plain whitespace:

* punctuation is split off, one token per mark (``. , ; : ! ? " ( ) [ ] ¿ ¡ « »`` ...), except
  runs of periods, hyphens or asterisks (``...``, ``--``, ``**``), which stay one token;
* kept whole: numbers with their decimal and grouping marks, times, dates and fractions
  (``3.5``, ``1,000``, ``10:30``, ``22/08/1996``), a sign or leading point (``+44``, ``-20ºC``,
  ``.500``), currencies such as ``US$``; hyphenated and slashed words (``well-known``,
  ``and/or``), with the hyphen of a suspended compound (``Struktur-`` in ``Struktur- und
  Regionalpolitik``); abbreviations with internal periods (``U.S.``, ``e.g.``, ``U.S.-led``);
  ``AT&T``, Catalan ``col·legi``, URLs, e-mail addresses and domain names (``Amazon.com``);
* a period that does not end the text is attached to a known abbreviation of the language
  (``Mr.``, ``Inc.``, ``Calif.``, Spanish ``Sra.``), to a single capital letter (the initial in
  ``John F. Kennedy``), to a list number at the start of the text (``1.``) and, in languages that
  write ordinals so (German, Scandinavian, Slavic...), to a number of up to three digits
  (``18. Jahrhundert``); at the end of the text a period is the sentence's full stop;
* apostrophes depend on the language (``lang``): English (the default, ``lang=None`` or ``"en"``)
  splits clitics as CoNLL-2003 does (``don't`` -> ``do n't``, ``John's`` -> ``John 's``, ``can't``
  -> ``ca n't``) and keeps names (``O'Brien``); French, Italian and Occitan split elisions after
  the apostrophe (``l'homme`` -> ``l' homme``, with exceptions such as ``aujourd'hui``); Catalan
  splits elisions (``l'home`` -> ``l' home``) and enclitics (``porta'ls`` -> ``porta 'ls``); other
  languages keep words with an internal apostrophe whole (Ukrainian ``м'ясо``). A clitic already
  standing alone stays one token (``'s``, ``'re``, Dutch ``'t``, ``'s-Hertogenbosch``, years such as
  ``'98``);
* all scripts: words are runs of letters, digits and combining marks (so Devanagari, Thai or
  Arabic words keep their vowel signs); Chinese characters and Japanese kana, which are written
  without spaces, become one token each (the character-level convention of Chinese NER corpora:
  there is no offline word segmenter here). Thai, Lao, Khmer and Burmese, also written without
  spaces, stay whole runs between spaces and punctuation.

A token never ends inside a grapheme cluster (what a reader sees as one character): emoji
sequences joined by ZWJ (U+200D), with skin-tone modifiers, or flag pairs stay one token.

Whitespace and the zero-width separators U+200B, U+2060 and U+FEFF separate tokens and are
dropped; every other character ends up in exactly one token, so the tokens, put back at their
offsets, reproduce the text (``split_words_with_offsets``), which marker-based projection needs.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

import regex

__all__ = ["split_words", "split_words_with_offsets"]


def _char_class(code_points: list[int]) -> str:
    """A regex character-class body (no brackets) matching exactly ``code_points``."""
    parts = []
    start = prev = None
    for cp in code_points + [-2]:
        if prev is not None and cp == prev + 1:
            prev = cp
            continue
        if start is not None:
            parts.append(f"\\U{start:08x}" if start == prev else f"\\U{start:08x}-\\U{prev:08x}")
        start = prev = cp
    return "".join(parts)


# Combining marks (categories Mn, Mc, Me) are not ``\w`` for Python's re, yet they are part of
# the word in Devanagari, Thai, Arabic (harakat) or decomposed Latin text. They all lie in planes
# 0-1 plus the variation selectors supplement; scanning those takes about 10 ms at import.
_MARKS = _char_class(
    [cp for span in (range(0x20000), range(0xE0100, 0xE01F0)) for cp in span if unicodedata.category(chr(cp))[0] == "M"]
)
# Scripts written without spaces whose characters are tokens of their own: kana, CJK ideographs
# (with extensions A-G and compatibility ideographs), the iteration marks and half-width kana.
_CJK = (
    "\u3005-\u3007\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
# Invisible characters that belong to the word they sit in: ZWNJ/ZWJ (Persian, Indic) and the
# soft hyphen.
_IN_WORD = "\u200c\u200d\u00ad"
_SEPARATORS = "\u200b\u2060\ufeff"

_W = f"(?:[^\\W{_CJK}]|[{_MARKS}{_IN_WORD}])"  # a word character
_LETTER = f"[^\\W\\d_{_CJK}]"
# What may join two runs of word characters into one token. Apostrophes are joined here and
# split again by the language rules below.
_JOINER = "(?:[-\u2010\u2011\u00b7&'\u2019/]|(?<=\\d)[.,:\u066b\u066c](?=\\d))"
_TLDS = r"(?:com|org|net|edu|gov|int|info|biz|io)(?:\.[a-z]{2})?|(?:co|ac)\.[a-z]{2}"

_TOKEN = re.compile(
    "|".join(
        f"(?P<{name}>{pattern})"
        for name, pattern in [
            ("url", rf"(?:(?:https?|ftp)://|www\.)[^\s{_SEPARATORS}<>\"«»“”]*[^\s{_SEPARATORS}<>\"«»“”.,;:!?)\]}}'’]"),
            ("email", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
            ("domain", rf"\w[\w-]*(?:\.[\w-]+)*?\.(?:{_TLDS})\b"),
            ("dotted", rf"(?:{_LETTER}\.){{2,}}(?:-{_W}+)*"),  # U.S., e.g., U.S.-led
            ("cjk", rf"[{_CJK}][{_MARKS}]*"),
            # a clitic standing alone, as in text that is already tokenised ("Germany 's"), Dutch
            # 't and 'n, and abbreviated years ('98, '90s)
            ("clitic", rf"(?<!['’])['’](?:[sSmMdDtTnN]|re|RE|ve|VE|ll|LL|\d\ds?)(?!\w)(?:-{_W}+)*"),
            ("currency", r"(?<!\w)[A-Z]{1,3}\$"),  # US$, C$, HK$
            # a number with a sign or a leading decimal point: +44, -20ºC, .500
            ("number", rf"(?<![\w.])(?:[+\-\u2212]\.?|\.)(?=\d){_W}+(?:{_JOINER}{_W}+)*"),
            # a word or number, with the hyphen of a suspended compound ("Struktur- und")
            ("word", rf"{_W}+(?:{_JOINER}{_W}+)*(?:-(?=[\s,]))?"),
            ("run", r"\.{2,}|-{2,}|\*{2,}"),  # ellipsis, dash, asterisks
            ("other", rf"[^\s{_SEPARATORS}][{_MARKS}]*"),  # punctuation, symbols
        ]
    )
)

_ABBREVIATIONS_EN = frozenset(
    "mr mrs ms dr prof st jr sr messrs inc corp ltd co bros vs rev gen gov sen rep lt col sgt capt "
    "cmdr adm mt ft vol jan feb mar apr jun jul aug sep sept oct nov dec "
    "ala ariz ark calif colo conn fla ga kan ky md mich minn nev okla ore pa tenn tex va vt wis wyo".split()
)
_ABBREVIATIONS_COMMON = frozenset("mr mrs dr prof st jr sr inc corp ltd co vs".split())
_ABBREVIATIONS = {
    "es": frozenset("sr sra srta sres dr dra ud uds núm pág av avda gral lic ing h kg".split()),
    "pt": frozenset("sr sra srs dr dra av pág núm eng".split()),
    "ca": frozenset("sr sra srta dr dra av pàg núm".split()),
    "fr": frozenset("mm mme mmes mlle mlles dr pr me st ste av bd".split()),
    "it": frozenset("sig sigg dott prof ing avv on geom".split()),
    "de": frozenset("dr prof nr str bzw vgl ca hr fr usw evtl ggf inkl bspw sog a b d h o s u v z".split()),
    "nl": frozenset("dhr mevr mr dr prof nr bijv ir ing fr tel gem enz blz min cm ca".split()),
}
_LANG_ALIASES = {
    "eng": "en",
    "fra": "fr",
    "fre": "fr",
    "ita": "it",
    "cat": "ca",
    "oci": "oc",
    "spa": "es",
    "por": "pt",
    "deu": "de",
    "ger": "de",
    "nld": "nl",
    "dut": "nl",
}

# Extended grapheme clusters (Unicode's rules, ZWJ emoji sequences included); only ``regex`` has \X.
_GRAPHEME = regex.compile(r"\X")
# The characters that can join a cluster across a token boundary; text without any (nearly all
# text) skips the cluster scan.
_MAY_JOIN = regex.compile(
    r"[\u200d\p{Grapheme_Cluster_Break=Prepend}\p{Grapheme_Cluster_Break=Regional_Indicator}"
    r"\p{Grapheme_Cluster_Break=Extend}\p{Grapheme_Cluster_Break=SpacingMark}]"
)

_APOSTROPHES = "'\u2019"
_EN_CLITIC = re.compile(r"(?:n['’]t|['’](?:s|m|d|re|ve|ll))$", re.IGNORECASE)
_ELISION_LANGS = frozenset({"fr", "it", "oc", "ca"})
# Languages that write ordinals as a number and a period ("am 18. Juni").
_ORDINAL_DOT_LANGS = frozenset("de da nb nn no is fi et cs sk sl hr sr bs hu lv lt pl tr".split())
_ELISION_EXCEPTIONS = frozenset(
    w.replace("'", a)
    for w in ("aujourd'hui", "quelqu'un", "quelqu'une", "prud'homme", "prud'hommes", "presqu'île")
    for a in _APOSTROPHES
)

Token = tuple[str, int, int]


def _normalise_lang(lang: Optional[str]) -> str:
    if lang is None:
        return "en"
    code = re.split(r"[-_]", lang.strip().lower(), maxsplit=1)[0]
    return _LANG_ALIASES.get(code, code)


def _split_english_clitics(tok: str, start: int) -> list[Token]:
    """``shouldn't've`` -> ``should``, ``n't``, ``'ve`` (clitics peeled from the right)."""
    tail: list[Token] = []
    while True:
        m = _EN_CLITIC.search(tok)
        if m is None or m.start() == 0:
            break
        tail.append((tok[m.start() :], start + m.start(), start + len(tok)))
        tok = tok[: m.start()]
    return [(tok, start, start + len(tok))] + tail[::-1]


def _split_elisions(tok: str, start: int, lang: str) -> list[Token]:
    """Split at each internal apostrophe: after it (elision ``l'``), or for Catalan before it when
    the left part is longer than one letter (enclitic ``'ls``)."""
    if tok.lower() in _ELISION_EXCEPTIONS:
        return [(tok, start, start + len(tok))]
    out: list[Token] = []
    piece = 0
    for k, ch in enumerate(tok):
        if ch not in _APOSTROPHES:
            continue
        cut = k if lang == "ca" and k - piece > 1 else k + 1
        out.append((tok[piece:cut], start + piece, start + cut))
        piece = cut
    out.append((tok[piece:], start + piece, start + len(tok)))
    return out


def _takes_period(word: str, lang: str, first: bool) -> bool:
    """Whether a period right after ``word`` (and not ending the text) belongs to it: a known
    abbreviation, an initial, an ordinal where ordinals take a period, or a list number ("1.")
    at the start of the text."""
    if word.isdigit():
        return len(word) <= 3 and (first or lang in _ORDINAL_DOT_LANGS)
    if not word.isalpha():
        return False
    if len(word) == 1 and word.isupper():
        return True
    known = _ABBREVIATIONS_EN if lang == "en" else _ABBREVIATIONS.get(lang, frozenset()) | _ABBREVIATIONS_COMMON
    return word.lower() in known


def split_words_with_offsets(text: str, lang: Optional[str] = None) -> list[Token]:
    """``(word, start, end)`` for each word of ``text``; ``text[start:end] == word``.

    ``lang`` (ISO 639-1, e.g. ``"fr"``; ``None`` means English) selects the apostrophe and
    abbreviation rules described in the module docstring.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_words expects a str, got {type(text).__name__}: {text!r}")
    lang = _normalise_lang(lang)
    raw = [(m.group(), m.start(), m.end(), m.lastgroup) for m in _TOKEN.finditer(text)]
    out: list[Token] = []
    prev_kind = None
    for k, (tok, start, end, kind) in enumerate(raw):
        if (
            tok == "."
            and k + 1 < len(raw)
            and prev_kind == "word"
            and out[-1][2] == start
            and _takes_period(out[-1][0], lang, first=len(out) == 1)
        ):
            out[-1] = (out[-1][0] + ".", out[-1][1], end)
            kind = "abbreviation"
        elif kind == "word" and any(a in tok for a in _APOSTROPHES):
            if lang == "en":
                out.extend(_split_english_clitics(tok, start))
            elif lang in _ELISION_LANGS:
                out.extend(_split_elisions(tok, start, lang))
            else:
                out.append((tok, start, end))
        else:
            out.append((tok, start, end))
        prev_kind = kind
    return _join_clusters(text, out)


def _join_clusters(text: str, tokens: list[Token]) -> list[Token]:
    """Merge touching tokens whose boundary falls inside a grapheme cluster (``👨\u200d👩`` is one
    character to a reader; split, it leaves tokens holding a bare ZWJ)."""
    if len(tokens) < 2 or text.isascii() or not _MAY_JOIN.search(text):
        return tokens
    starts = {m.start() for m in _GRAPHEME.finditer(text)}
    merged = [tokens[0]]
    for tok in tokens[1:]:
        word, start, end = merged[-1]
        if end == tok[1] and tok[1] not in starts:
            merged[-1] = (word + tok[0], start, tok[2])
        else:
            merged.append(tok)
    return merged


def split_words(text: str, lang: Optional[str] = None) -> list[str]:
    """The words of ``text`` (see ``split_words_with_offsets`` and the module docstring)."""
    return [tok for tok, _, _ in split_words_with_offsets(text, lang)]
