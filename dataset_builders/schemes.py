"""Label schemes: IOB1/IOB2 tag sequences, entity spans, and explicit mapping between type sets.

A *span* is a dict ``{"start": i, "end": j, "label": TYPE}`` over word indices with ``end``
exclusive, the same form as the ``source_entities`` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

OUTSIDE = "O"


class TagSequenceError(ValueError):
    """A tag sequence that is not valid IOB2 (or uses a tag outside the scheme)."""


def split_tag(tag: str) -> tuple[str, Optional[str]]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``. Raises on anything else."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not label:
        raise TagSequenceError(f"malformed tag {tag!r}: expected 'O', 'B-TYPE' or 'I-TYPE'")
    return prefix, label


def iob1_to_iob2(tags: Sequence[str]) -> list[str]:
    """IOB1 (I- starts an entity unless it follows one of the same type) -> IOB2 (B- starts every entity)."""
    out: list[str] = []
    prev_label: Optional[str] = None
    for tag in tags:
        prefix, label = split_tag(tag)
        if prefix == "I" and label != prev_label:
            out.append(f"B-{label}")
        else:
            out.append(tag)
        prev_label = label
    return out


def validate_iob2(tags: Sequence[str], repair: bool = False) -> list[str]:
    """Check IOB2; with ``repair`` an I- that does not continue an entity of its type becomes B-.

    Raises :class:`TagSequenceError` naming the first bad position when ``repair`` is false.
    """
    out = list(tags)
    prev_label: Optional[str] = None
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix == "I" and label != prev_label:
            if not repair:
                before = tags[i - 1] if i else "<start>"
                raise TagSequenceError(
                    f"invalid IOB2 at position {i}: {tag!r} after {before!r} does not continue an entity"
                )
            out[i] = f"B-{label}"
        prev_label = label
    return out


def tags_to_spans(tags: Sequence[str]) -> list[dict]:
    """Entity spans of an IOB2 sequence (a stray I- opens a new span, as conlleval reads it)."""
    spans: list[dict] = []
    start, current = None, None
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if current is not None and (prefix != "I" or label != current):
            spans.append({"start": start, "end": i, "label": current})
            start, current = None, None
        if prefix == "B" or (prefix == "I" and current is None):
            start, current = i, label
    if current is not None:
        spans.append({"start": start, "end": len(tags), "label": current})
    return spans


def spans_to_tags(spans: Iterable[Mapping], length: int) -> list[str]:
    """IOB2 tags of ``length`` words from non-overlapping spans; raises on overlap or out-of-range spans."""
    tags = [OUTSIDE] * length
    for span in sorted(spans, key=lambda s: s["start"]):
        start, end, label = int(span["start"]), int(span["end"]), span["label"]
        if not 0 <= start < end <= length:
            raise TagSequenceError(f"span {dict(span)} is outside a sentence of {length} words")
        if any(t != OUTSIDE for t in tags[start:end]):
            raise TagSequenceError(f"span {dict(span)} overlaps another span")
        tags[start] = f"B-{label}"
        for k in range(start + 1, end):
            tags[k] = f"I-{label}"
    return tags


@dataclass(frozen=True)
class LabelScheme:
    """An IOB2 label set over entity types, in a fixed order (O, B-T1, I-T1, B-T2, ...)."""

    types: tuple[str, ...]
    name: str = ""

    def __post_init__(self):
        if len(set(self.types)) != len(self.types) or not all(self.types):
            raise ValueError(f"entity types must be unique and non-empty, got {self.types}")

    @property
    def label_names(self) -> list[str]:
        names = [OUTSIDE]
        for t in self.types:
            names += [f"B-{t}", f"I-{t}"]
        return names

    @classmethod
    def from_label_names(cls, names: Sequence[str], name: str = "") -> "LabelScheme":
        types: list[str] = []
        for tag in names:
            _, label = split_tag(tag)
            if label is not None and label not in types:
                types.append(label)
        return cls(tuple(types), name)

    def check_tags(self, tags: Sequence[str]) -> None:
        known = set(self.label_names)
        for i, tag in enumerate(tags):
            if tag not in known:
                raise TagSequenceError(f"unknown tag {tag!r} at position {i}; the scheme has {self.label_names}")


CONLL = LabelScheme(("PER", "ORG", "LOC", "MISC"), "conll")
WIKIANN = LabelScheme(("PER", "ORG", "LOC"), "wikiann")
MASAKHANER = LabelScheme(("PER", "ORG", "LOC", "DATE"), "masakhaner")
GERMEVAL = LabelScheme(
    tuple(f"{t}{s}" for t in ("PER", "ORG", "LOC", "OTH") for s in ("", "deriv", "part")), "germeval"
)


@dataclass(frozen=True)
class TypeMapping:
    """An explicit map from the types of one scheme to another's; ``None`` sends a type to O.

    Every source type must be either in the target scheme (kept as is) or named in ``mapping``:
    nothing is dropped silently.
    """

    source: LabelScheme
    target: LabelScheme
    mapping: Mapping[str, Optional[str]] = field(default_factory=dict)

    def __post_init__(self):
        for src, dst in self.mapping.items():
            if src not in self.source.types:
                raise ValueError(f"mapping names {src!r}, which is not a type of {self.source.types}")
            if dst is not None and dst not in self.target.types:
                raise ValueError(f"mapping sends {src!r} to {dst!r}, which is not a type of {self.target.types}")
        missing = [t for t in self.source.types if t not in self.target.types and t not in self.mapping]
        if missing:
            raise ValueError(
                f"types {missing} of {self.source.types} are not in {self.target.types}; "
                f"map them explicitly (to a target type or to None for O)"
            )

    def map_type(self, label: str) -> Optional[str]:
        return self.mapping[label] if label in self.mapping else label

    def map_tags(self, tags: Sequence[str]) -> list[str]:
        """Map an IOB2 sequence; spans are mapped whole, so the output is valid IOB2 again."""
        out = [OUTSIDE] * len(tags)
        for span in tags_to_spans(tags):
            label = self.map_type(span["label"])
            if label is not None:
                out[span["start"]] = f"B-{label}"
                for k in range(span["start"] + 1, span["end"]):
                    out[k] = f"I-{label}"
        return out

    def id_table(self) -> list[int]:
        """Source label id -> target label id (B-/I- kept), for mapping ClassLabel columns."""
        target_ids = {n: i for i, n in enumerate(self.target.label_names)}
        table = []
        for tag in self.source.label_names:
            prefix, label = split_tag(tag)
            mapped = None if label is None else self.map_type(label)
            table.append(target_ids[OUTSIDE] if mapped is None else target_ids[f"{prefix}-{mapped}"])
        return table


# Standard explicit mappings between the schemes of the known corpora.
GERMEVAL_TO_CONLL = TypeMapping(
    GERMEVAL,
    CONLL,
    {"OTH": "MISC", **{f"{t}{s}": None for t in ("PER", "ORG", "LOC", "OTH") for s in ("deriv", "part")}},
)
CONLL_TO_MASAKHANER = TypeMapping(CONLL, MASAKHANER, {"MISC": None})
MASAKHANER_TO_CONLL = TypeMapping(MASAKHANER, CONLL, {"DATE": None})
CONLL_TO_WIKIANN = TypeMapping(CONLL, WIKIANN, {"MISC": None})
