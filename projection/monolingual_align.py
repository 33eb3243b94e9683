"""Word alignment of two sentences in the same language (a back-translation and the original).

Back-translation projection ends by aligning the original target sentence with a machine
translation into the same language. The two share most of their words, so string matching does
the job in microseconds per pair, deterministically and without a model or training data:

1. **exact matches**: :class:`difflib.SequenceMatcher` over word keys (casefolded, diacritics
   removed, so ``Señor``/``señor`` and ``Canadá``/``Canada`` match) finds the longest common
   blocks of words, recursively on both sides of each (monotone);
2. **similar words in the gaps**: between two consecutive blocks, the unmatched words of each side
   are paired by character similarity (:meth:`difflib.SequenceMatcher.ratio` of the keys, at least
   ``threshold``), keeping the order and maximising the total similarity (a small dynamic
   programme per gap): ``presidenta``/``presidente``, ``Europea``/``europeo``;
3. **moved words** (``reorder=True``): a word left unmatched whose key occurs exactly once among
   the unmatched words of each side is paired with its twin, wherever it is: MT often moves a
   phrase (an adverbial, a name in a possessive) and monotone matching cannot follow it. Keys that
   occur several times are left alone; pairing them would be a guess.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from difflib import SequenceMatcher
from functools import lru_cache
from typing import Any, Sequence

__all__ = ["MonolingualAligner"]


@lru_cache(maxsize=1 << 16)
def _key(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class MonolingualAligner:
    """Align word lists of the same language; ``align(src, tgt)`` gives ``(i, j)`` pairs per
    sentence, ``i`` indexing the source words and ``j`` the target words, sorted by ``i``.

    Args:
        threshold: minimum similarity (0-1, difflib ratio of the word keys) for step 2.
        reorder: pair moved words (step 3).

    Same interface as the other aligners, so :class:`projection.transforms.Align` can use it. The
    state is the configuration, so it pickles and fingerprints deterministically.
    """

    trains_on_input = False

    def __init__(self, threshold: float = 0.7, reorder: bool = True):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.reorder = bool(reorder)

    @property
    def config(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "reorder": self.reorder}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold}, reorder={self.reorder})"

    def align(
        self, src_sents: Sequence[Sequence[str]], tgt_sents: Sequence[Sequence[str]]
    ) -> list[list[tuple[int, int]]]:
        if len(src_sents) != len(tgt_sents):
            raise ValueError(f"{len(src_sents)} source sentences but {len(tgt_sents)} target sentences")
        return [self.align_pair(src, tgt) for src, tgt in zip(src_sents, tgt_sents)]

    def align_pair(self, src: Sequence[str], tgt: Sequence[str]) -> list[tuple[int, int]]:
        a = [_key(w) for w in src]
        b = [_key(w) for w in tgt]
        pairs: list[tuple[int, int]] = []
        i0 = j0 = 0
        for i, j, size in SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks():
            pairs.extend(self._gap(a, b, i0, i, j0, j))
            pairs.extend((i + k, j + k) for k in range(size))
            i0, j0 = i + size, j + size
        if self.reorder:
            pairs.extend(_moved(a, b, pairs))
        return sorted(pairs)

    def _gap(self, a: list[str], b: list[str], i0: int, i1: int, j0: int, j1: int) -> list[tuple[int, int]]:
        """Monotone pairs of maximal total similarity between ``a[i0:i1]`` and ``b[j0:j1]``."""
        n, m = i1 - i0, j1 - j0
        if not n or not m:
            return []
        sim = [[0.0] * m for _ in range(n)]
        matcher = SequenceMatcher(None, autojunk=False)
        for y in range(m):
            matcher.set_seq2(b[j0 + y])
            for x in range(n):
                matcher.set_seq1(a[i0 + x])
                if matcher.real_quick_ratio() >= self.threshold and matcher.quick_ratio() >= self.threshold:
                    ratio = matcher.ratio()
                    if ratio >= self.threshold:
                        sim[x][y] = ratio
        if not any(any(row) for row in sim):
            return []
        best = [[0.0] * (m + 1) for _ in range(n + 1)]
        for x in range(n):
            for y in range(m):
                best[x + 1][y + 1] = max(best[x][y + 1], best[x + 1][y], best[x][y] + sim[x][y] if sim[x][y] else 0.0)
        pairs = []
        x, y = n, m
        while x and y:
            if best[x][y] == best[x - 1][y]:
                x -= 1
            elif best[x][y] == best[x][y - 1]:
                y -= 1
            else:
                pairs.append((i0 + x - 1, j0 + y - 1))
                x, y = x - 1, y - 1
        return pairs[::-1]


def _moved(a: list[str], b: list[str], pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Pairs of still-unmatched words whose key is unique among the unmatched words of each side."""
    used_a = {i for i, _ in pairs}
    used_b = {j for _, j in pairs}
    free_a = {i: k for i, k in enumerate(a) if i not in used_a}
    free_b = {j: k for j, k in enumerate(b) if j not in used_b}
    count_a, count_b = Counter(free_a.values()), Counter(free_b.values())
    where_b = {k: j for j, k in free_b.items() if count_b[k] == 1}
    return [(i, where_b[k]) for i, k in free_a.items() if count_a[k] == 1 and k in where_b]
