"""Machine translation with Apertium (rule-based, offline, from Debian packages).

Apertium starts in about 0.1 s but translates about a thousand sentences a second, so starting
one process per sentence would waste most of the time: ``ApertiumTranslator`` sends
``batch_size`` sentences to one ``apertium`` call and splits the output again.

* ``mode="plain"``: each sentence is its own paragraph (blank-line separated). Apertium's text
  format treats a blank line as a sentence end, so no rule reorders words across sentences, and
  it keeps the blank lines. Newlines inside a sentence are sent as spaces.
* ``mode="html"``: for marker-based projection. The input is plain text in which entity spans are
  wrapped in marker tags, ``<b>`` ... ``</b>`` by default (``marker_tag``), possibly with
  attributes (``<b id="e0">``); everything else is HTML-escaped, each sentence is sent as its own
  ``<p>`` block with ``apertium -f html``, and the output is unescaped, so only the markers come
  back as tags. Apertium moves the tags with the words they enclose; a marked span whose words are
  reordered can come back split into several marked pieces, each with the attributes of the
  original tag (``<b id="e1">Presidente de</b> la paga de <b id="e1">Francia</b>``), which the
  caller must handle.

If a batch's output does not split into as many pieces as sentences went in, its halves are
retried, down to one sentence per call (always aligned; costs only a few calls per bad sentence).
Empty or blank inputs give ``""`` without calling Apertium. Unknown words are passed through
without Apertium's ``*`` mark unless ``mark_unknown=True``. In HTML mode a text that contains
escaped markup (``&lt;b&gt;``) comes back unescaped, indistinguishable from a marker.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from typing import Any, Sequence, Union

from projection.configured import Configured

__all__ = ["ApertiumError", "ApertiumTranslator", "ISO_639_3", "pair_name"]

# ISO 639-1 -> the ISO 639-3 codes Apertium's pair names use.
ISO_639_3 = {
    "af": "afr",
    "an": "arg",
    "ar": "ara",
    "be": "bel",
    "bg": "bul",
    "br": "bre",
    "ca": "cat",
    "cy": "cym",
    "da": "dan",
    "de": "deu",
    "el": "ell",
    "en": "eng",
    "eo": "epo",
    "es": "spa",
    "eu": "eus",
    "fr": "fra",
    "ga": "gle",
    "gl": "glg",
    "hi": "hin",
    "id": "ind",
    "is": "isl",
    "it": "ita",
    "kk": "kaz",
    "mk": "mkd",
    "ms": "zlm",
    "mt": "mlt",
    "nb": "nob",
    "nl": "nld",
    "nn": "nno",
    "no": "nor",
    "oc": "oci",
    "pl": "pol",
    "pt": "por",
    "ro": "ron",
    "ru": "rus",
    "sc": "srd",
    "sh": "hbs",
    "sl": "slv",
    "sv": "swe",
    "tr": "tur",
    "uk": "ukr",
    "ur": "urd",
}
MODES = ("plain", "html")
_SEPARATOR_TAG = "p"
_PARAGRAPH_BREAK = re.compile(r"[^\S\n]*\n[^\S\n]*\n[^\S\n]*")
_PARAGRAPH = re.compile(f"<{_SEPARATOR_TAG}>(.*?)</{_SEPARATOR_TAG}>", re.DOTALL)


class ApertiumError(RuntimeError):
    """Apertium, or the requested language pair, is not installed, or a call failed."""


def _code(lang: str) -> str:
    return ISO_639_3.get(lang.lower(), lang)


def pair_name(pair: Union[str, Sequence[str]]) -> str:
    """Apertium's name for a direction: ``("en", "es")``, ``"en-es"`` and ``"eng-spa"`` all give
    ``"eng-spa"``; names Apertium uses as they are (``"spa-eng_US"``) are kept."""
    if isinstance(pair, str):
        src, sep, tgt = pair.partition("-")
        if not sep:
            raise ValueError(f"language pair {pair!r} must look like 'eng-spa' or ('en', 'es')")
    else:
        src, tgt = pair
    return f"{_code(src)}-{_code(tgt)}"


class ApertiumTranslator(Configured):
    """Translate many sentences per ``apertium`` process; see the module docstring.

    Args:
        pair: direction, e.g. ``"eng-spa"``, ``"en-es"`` or ``("en", "es")``.
        mode: ``"plain"`` or ``"html"`` (marker tags kept).
        batch_size: sentences per ``apertium`` call.
        marker_tag: the tag name of the span markers in HTML mode. Use an inline tag Apertium's
            HTML format knows (``b``, ``i``, ``em``, ``span``): Apertium seems to take an unknown
            tag such as ``<ent>`` for a sentence break (the word after it comes back capitalised).
        mark_unknown: keep Apertium's ``*`` before unknown words (``-u`` is passed otherwise).

    The constructor checks that ``apertium`` and the pair are installed and raises
    ``ApertiumError`` naming the Debian package otherwise. ``__getstate__`` is the configuration.
    """

    def __init__(
        self,
        pair: Union[str, Sequence[str]] = "eng-spa",
        mode: str = "plain",
        batch_size: int = 500,
        marker_tag: str = "b",
        mark_unknown: bool = False,
    ):
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose among {MODES}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", marker_tag) or marker_tag.lower() == _SEPARATOR_TAG:
            raise ValueError(f"marker_tag must be an HTML tag name other than {_SEPARATOR_TAG!r}, got {marker_tag!r}")
        self.pair = pair_name(pair)
        self.mode = mode
        self.batch_size = int(batch_size)
        self.marker_tag = marker_tag
        self.mark_unknown = bool(mark_unknown)
        self._check_installed()
        self._markers = re.compile(rf"(</?{re.escape(marker_tag)}(?:\s[^<>]*)?>)", re.IGNORECASE)

    @property
    def config(self) -> dict[str, Any]:
        """The settings (JSON-friendly): what dataset cards record and fingerprints hash."""
        return {
            "pair": self.pair,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "marker_tag": self.marker_tag,
            "mark_unknown": self.mark_unknown,
        }

    def _check_installed(self) -> None:
        src, _, tgt = self.pair.partition("-")
        package = f"apertium-{src}-{tgt.split('_')[0]}"
        if shutil.which("apertium") is None:
            raise ApertiumError(
                f"the 'apertium' program is not installed; on Debian/Ubuntu: apt-get install apertium {package}"
            )
        listing = subprocess.run(["apertium", "-l"], capture_output=True, text=True, check=False)
        installed = listing.stdout.split()
        if self.pair not in installed:
            raise ApertiumError(
                f"Apertium has no {self.pair!r} translator installed (installed: {', '.join(installed) or 'none'}); "
                f"install its language data, e.g. apt-get install {package} (some pairs are packaged under the "
                f"other order or with 2-letter codes: apt-cache search apertium)"
            )

    # ------------------------------------------------------------------ translation

    def translate(self, texts: Sequence[str]) -> list[str]:
        """One translation per text, in order; ``""`` for empty or blank texts."""
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {k} must be a str, got {type(text).__name__}: {text!r}")
        out = [""] * len(texts)
        todo = [k for k, text in enumerate(texts) if text.strip()]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            for k, piece in zip(batch, self._translate_encoded([self._encode(texts[k]) for k in batch])):
                out[k] = self._decode(piece)
        return out

    def _translate_encoded(self, encoded: list[str]) -> list[str]:
        """Raw Apertium output for each encoded text. When the output of a batch does not split
        into one piece per text, each half is retried, down to single texts sent without any
        separator, so one troublesome sentence costs a few calls, not one per sentence."""
        if len(encoded) == 1:
            return [self._run(encoded[0] + "\n")]
        pieces = self._split(self._run(self._join(encoded)))
        if len(pieces) == len(encoded):
            return pieces
        half = len(encoded) // 2
        return self._translate_encoded(encoded[:half]) + self._translate_encoded(encoded[half:])

    def _encode(self, text: str) -> str:
        """One line of Apertium input: whitespace runs (newlines included) become one space; in
        HTML mode everything but the marker tags is escaped."""
        text = " ".join(text.split())
        if self.mode == "plain":
            return text
        parts = self._markers.split(text)
        return "".join(p if self._markers.fullmatch(p) else html.escape(p, quote=False) for p in parts)

    def _join(self, encoded: Sequence[str]) -> str:
        if self.mode == "plain":
            return "\n\n".join(encoded) + "\n"
        return "".join(f"<{_SEPARATOR_TAG}>{e}</{_SEPARATOR_TAG}>\n" for e in encoded)

    def _split(self, output: str) -> list[str]:
        if self.mode == "plain":
            return _PARAGRAPH_BREAK.split(output.strip("\n"))
        return _PARAGRAPH.findall(output)

    def _decode(self, piece: str) -> str:
        if self.mode == "html":
            piece = "".join(p if self._markers.fullmatch(p) else html.unescape(p) for p in self._markers.split(piece))
        return " ".join(piece.split())

    def _run(self, text: str) -> str:
        cmd = ["apertium"] + ([] if self.mark_unknown else ["-u"]) + (["-f", "html"] if self.mode == "html" else [])
        cmd.append(self.pair)
        result = subprocess.run(cmd, input=text, capture_output=True, text=True, encoding="utf-8", check=False)
        if result.returncode != 0:
            raise ApertiumError(f"{' '.join(cmd)} failed (exit {result.returncode}): {result.stderr.strip()[:500]}")
        return result.stdout
