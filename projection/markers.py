"""Entity markers for marker-based (back-translation) projection.

A markup-preserving translator (Apertium with ``-f html``) moves tags with the words they enclose,
so wrapping each source entity in ``<b id="eK">`` ... ``</b>`` (K = the entity's index) before
translating tells us where entity K went. :func:`mark_entities` writes the marked source text and
:func:`parse_marked` reads the translation back into words and labelled word spans.

What can come back, and what :func:`parse_marked` does with it (each case is counted in the
returned ``issues``, one count per entity unless said otherwise):

* ``split``: the entity's words were reordered and it came back as several marked pieces with the
  same id (``<b id="e2">Herrero</b> de <b id="e2">Señor</b>`` for "Mr. Smith's"). Pieces at most
  ``merge_distance`` words apart, with no word of another entity between them, are merged; the
  entity still projects.
* ``partial``: the pieces could not all be merged; the longest merged group (the first at equal
  length) is kept, the rest of the entity is lost.
* ``missing``: no marker (or only markers around no word) came back for the entity.
* ``unbalanced``: an opening marker that never closes (its entity is dropped; the markers after
  it are read as if it were not there), a closing marker with no opening one (counted as one event;
  no entity is known to drop), or a marker whose id is not ``e0`` ... ``e{n-1}`` (counted once per
  such marker; what it encloses is plain text).
* ``nested``: a closed marker inside another closed one; both entities are dropped, since which
  words belong to which is unknowable.
* ``overlap``: two entities' final spans share a word (markers inside a word); the longer span is
  kept.

Punctuation-only words at the edges of a marked piece are not part of the entity (a closing tag
that lands after a full stop must not make the stop a name).
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

from projection.candidates import is_punctuation
from projection.detokenize import detokenize
from projection.word_split import split_words_with_offsets

__all__ = ["ISSUES", "mark_entities", "parse_marked"]

ISSUES = ("split", "partial", "missing", "unbalanced", "nested", "overlap")
_ID = re.compile(r"""\bid\s*=\s*["']?e(\d+)["']?""", re.IGNORECASE)


def _check_tag(tag: str) -> None:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", tag):
        raise ValueError(f"marker tag must be an HTML tag name, got {tag!r}")


def _token_offsets(tokens: Sequence[str], text: str) -> list[tuple[int, int]]:
    """Character range of each token in ``detokenize(tokens)`` (empty tokens get an empty range at
    the next token). ``detokenize`` only puts spaces between tokens, so a left-to-right search finds them."""
    offsets, cursor = [], 0
    for tok in tokens:
        if tok:
            cursor = text.index(tok, cursor)
        offsets.append((cursor, cursor + len(tok)))
        cursor += len(tok)
    return offsets


def mark_entities(tokens: Sequence[str], spans: Sequence[Mapping], tag: str = "b") -> str:
    """Detokenise ``tokens`` with ``<tag id="eK">`` ... ``</tag>`` around entity K (``spans[K]``).

    Spans are ``{start, end, label}`` word spans (end exclusive); they must lie inside the sentence,
    be non-empty and not overlap (``ValueError`` otherwise).
    """
    _check_tag(tag)
    text = detokenize(tokens)
    offsets = _token_offsets(tokens, text)
    inserts: list[tuple[int, int, str]] = []  # (position, closing-before-opening order, tag text)
    previous_end = -1
    for k, span in sorted(enumerate(spans), key=lambda item: item[1]["start"]):
        start, end = int(span["start"]), int(span["end"])
        if not 0 <= start < end <= len(tokens):
            raise ValueError(f"entity {k} {dict(span)} is not a non-empty span of a {len(tokens)}-word sentence")
        if start < previous_end:
            raise ValueError(f"entity {k} {dict(span)} overlaps the entity before it")
        previous_end = end
        inserts.append((offsets[start][0], 1, f'<{tag} id="e{k}">'))
        inserts.append((offsets[end - 1][1], 0, f"</{tag}>"))
    pieces, cursor = [], 0
    for position, _, marker in sorted(inserts):
        pieces.extend((text[cursor:position], marker))
        cursor = position
    pieces.append(text[cursor:])
    return "".join(pieces)


def _scan(text: str, tag: str, n_entities: int, issues: dict[str, int]):
    """Strip the markers: the plain text, each entity's marked character ranges, and the entities
    to drop (unbalanced or nested), counting stray and unknown markers in ``issues``.

    Closing markers close the latest open one. An opening marker left open at the end drops its
    entity only: the markers after it are read as if it were not there (a lost closing tag must
    not take the rest of the sentence with it). A closed marker with another closed inside it
    drops both (nested)."""
    marker = re.compile(rf"<(/?){re.escape(tag)}(\s[^<>]*)?>", re.IGNORECASE)
    plain: list[str] = []
    length = 0
    closed: list[tuple[Optional[int], int, int]] = []  # (entity or None for an unknown id, start, end)
    stack: list[tuple[Optional[int], int, int]] = []  # (entity, start, len(closed) when it opened)
    dropped: dict[int, str] = {}
    cursor = 0
    for m in marker.finditer(text):
        plain.append(text[cursor : m.start()])
        length += m.start() - cursor
        cursor = m.end()
        if not m.group(1):  # opening
            found = _ID.search(m.group(2) or "")
            entity = int(found.group(1)) if found else None
            if entity is None or entity >= n_entities:
                issues["unbalanced"] += 1
                entity = None
            stack.append((entity, length, len(closed)))
        elif stack:
            entity, start, first_inside = stack.pop()
            inner = [e for e, _, _ in closed[first_inside:] if e is not None]
            if entity is not None and inner:
                for e in (entity, *inner):
                    dropped.setdefault(e, "nested")
            closed.append((entity, start, length))
        else:
            issues["unbalanced"] += 1
    plain.append(text[cursor:])
    for entity, _, _ in stack:
        if entity is not None:
            dropped[entity] = "unbalanced"
    pieces: dict[int, list[tuple[int, int]]] = {}
    for entity, start, end in closed:
        if entity is not None and entity not in dropped:
            pieces.setdefault(entity, []).append((start, end))
    return "".join(plain), pieces, dropped


def _word_range(words: list[tuple[str, int, int]], start: int, end: int) -> Optional[tuple[int, int]]:
    """Words overlapping characters ``[start, end)``, punctuation-only words at the edges left out."""
    inside = [k for k, (w, ws, we) in enumerate(words) if ws < end and we > start]
    while inside and is_punctuation(words[inside[0]][0]):
        inside.pop(0)
    while inside and is_punctuation(words[inside[-1]][0]):
        inside.pop()
    return (inside[0], inside[-1] + 1) if inside else None


def _resolve_pieces(
    ranges: list[tuple[int, int]], others: set[int], merge_distance: int
) -> tuple[tuple[int, int], bool]:
    """Merge sorted word ranges of one entity whose gaps are short and free of other entities'
    words; return the longest merged group and whether it is all of them."""
    groups = [list(ranges[0])]
    for start, end in ranges[1:]:
        last = groups[-1]
        gap = range(last[1], start)
        if len(gap) <= merge_distance and not others.intersection(gap):
            last[1] = max(last[1], end)
        else:
            groups.append([start, end])
    best = max(groups, key=lambda g: g[1] - g[0])  # max keeps the first of equal lengths
    return (best[0], best[1]), len(groups) == 1


def parse_marked(
    text: str,
    labels: Sequence[str],
    lang: Optional[str] = None,
    tag: str = "b",
    merge_distance: int = 1,
) -> tuple[list[str], list[dict], dict[str, int]]:
    """Read a marked translation: ``(words, spans, issues)``.

    ``labels[K]`` is the type of entity K (the entity marked ``id="eK"``); ``words`` are the
    words of the text without markers (split for ``lang`` by
    :func:`projection.word_split.split_words_with_offsets`); ``spans`` are ``{start, end, label,
    entity}`` word spans sorted by start (``entity`` = K); ``issues`` counts the cases listed in
    the module docstring.
    """
    _check_tag(tag)
    if merge_distance < 0:
        raise ValueError(f"merge_distance must be >= 0, got {merge_distance}")
    issues = dict.fromkeys(ISSUES, 0)
    plain, pieces, dropped = _scan(text, tag, len(labels), issues)
    words = split_words_with_offsets(plain, lang)
    ranges: dict[int, list[tuple[int, int]]] = {}
    for entity, chars in pieces.items():
        found = sorted(r for r in (_word_range(words, s, e) for s, e in chars) if r is not None)
        if found:
            ranges[entity] = found
    for reason in dropped.values():
        issues[reason] += 1
    issues["missing"] = len(labels) - len(ranges) - len(dropped)

    owner: dict[int, int] = {w: e for e, rs in ranges.items() for s, t in rs for w in range(s, t)}
    chosen: list[tuple[int, int, int]] = []  # (start, end, entity)
    for entity, rs in ranges.items():
        others = {w for w, e in owner.items() if e != entity}
        (start, end), whole = _resolve_pieces(rs, others, merge_distance)
        if len(rs) > 1:
            issues["split" if whole else "partial"] += 1
        chosen.append((start, end, entity))

    spans: list[dict] = []
    taken: set[int] = set()
    for start, end, entity in sorted(chosen, key=lambda c: (c[0] - c[1], c[2])):  # longest first
        if taken.intersection(range(start, end)):
            issues["overlap"] += 1
            continue
        taken.update(range(start, end))
        spans.append({"start": start, "end": end, "label": labels[entity], "entity": entity})
    spans.sort(key=lambda s: s["start"])
    return [w for w, _, _ in words], spans, issues
