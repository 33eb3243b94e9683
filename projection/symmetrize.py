"""Symmetrisation of two directional word alignments (Koehn et al. 2003, as in fast_align's atools).

Directional aligners (IBM models, eflomal) link each word of one side to at most one word of the
other, so neither direction alone can express one-to-many links and both make confident mistakes
on rare words. The intersection of the two directions is precise, the union has high recall;
the "grow" heuristics start from the intersection and add union links next to links already
accepted. This module reproduces ``atools -c <method>`` of fast_align exactly, including the
details that decide its output:

* grow-diag: the candidates are the union links not in the intersection, visited in sorted
  ``(i, j)`` order; a candidate is added when at least one of its two words is still unaligned and
  one of its 8 neighbours (horizontal, vertical, diagonal) is already in the alignment; the
  alignment is updated immediately, so a link added early in a pass can let a later candidate of
  the same pass in; passes repeat until one adds nothing;
* final: then the forward links, and after them the reverse links, are visited in sorted order
  and added when at least one of their words is unaligned ("grow-diag-final") or when both are
  unaligned ("grow-diag-final-and"), with no neighbour condition.

Other implementations of the same names (Moses' ``symal``, NLTK's ``grow_diag_final_and``) visit
the candidates in other orders and can differ on some sentences; atools' order is the one
reproduced here because it is what fast_align and eflomal users run.

Both inputs are ``(i, j)`` pairs in the SOURCE->TARGET orientation (source word i, target word
j): convert a reverse model's ``(j, i)`` output before calling.
"""

from __future__ import annotations

from typing import Iterable

__all__ = ["METHODS", "symmetrize"]

Alignment = list[tuple[int, int]]

METHODS = ("intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and", "forward", "reverse")
_NEIGHBOURS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))


def _checked(links: Iterable[tuple[int, int]], src_len: int, tgt_len: int, name: str) -> set[tuple[int, int]]:
    out = set()
    for pair in links:
        i, j = pair
        if not (0 <= i < src_len and 0 <= j < tgt_len):
            raise ValueError(
                f"{name} alignment link {tuple(pair)!r} is out of range for a sentence pair of "
                f"{src_len} source and {tgt_len} target words"
            )
        out.add((int(i), int(j)))
    return out


def symmetrize(
    forward: Iterable[tuple[int, int]],
    reverse: Iterable[tuple[int, int]],
    src_len: int,
    tgt_len: int,
    method: str = "grow-diag-final-and",
) -> Alignment:
    """Combine the two directions of one sentence pair with ``method`` (one of ``METHODS``).

    Returns the sorted, duplicate-free ``(i, j)`` links. Raises ``ValueError`` on an unknown
    method or a link outside ``src_len`` x ``tgt_len``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown symmetrization method {method!r}; choose among {METHODS}")
    fwd = _checked(forward, src_len, tgt_len, "forward")
    rev = _checked(reverse, src_len, tgt_len, "reverse")
    if method == "forward":
        return sorted(fwd)
    if method == "reverse":
        return sorted(rev)
    if method == "union":
        return sorted(fwd | rev)
    alignment = fwd & rev
    if method == "intersection":
        return sorted(alignment)

    src_aligned = [False] * src_len
    tgt_aligned = [False] * tgt_len

    def add(i: int, j: int) -> None:
        alignment.add((i, j))
        src_aligned[i] = tgt_aligned[j] = True

    for i, j in alignment:
        src_aligned[i] = tgt_aligned[j] = True

    pending = sorted((fwd | rev) - alignment)
    while pending:
        added = set()
        for i, j in pending:
            if (not src_aligned[i] or not tgt_aligned[j]) and any(
                (i + di, j + dj) in alignment for di, dj in _NEIGHBOURS
            ):
                add(i, j)
                added.add((i, j))
        if not added:
            break
        pending = [p for p in pending if p not in added]

    if method != "grow-diag":
        both_unaligned = method == "grow-diag-final-and"
        for directional in (fwd, rev):
            for i, j in sorted(directional):
                if (i, j) in alignment:
                    continue
                if (
                    (not src_aligned[i] and not tgt_aligned[j])
                    if both_unaligned
                    else (not src_aligned[i] or not tgt_aligned[j])
                ):
                    add(i, j)
    return sorted(alignment)
