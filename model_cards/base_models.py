"""The Hub id of a base model that was loaded from a local folder, so that nothing published names a local path.

A Hub id is its own id; for a local folder :func:`hub_id_of` delegates to
:func:`training.assets.hub_id_of`, the one table of models xner knows offline (converted assets,
packaged models, Hub cache snapshots). Anything else has no known id: the publisher then needs one
from the user (``--base_model_id``).
"""

from __future__ import annotations

import os
from typing import Optional

from model_cards.rendering import hub_id
from training import assets
from training.assets import KNOWN_PACKAGED_MODELS


def hub_id_of(name_or_path: Optional[str]) -> Optional[str]:
    """The Hub id of ``name_or_path`` (a Hub id, a short asset name or a local folder); None when unknown."""
    if not name_or_path:
        return None
    value = str(name_or_path)
    if hub_id(value) and not os.path.isdir(value):
        return value
    return assets.hub_id_of(value)


def provenance_note(name_or_path: Optional[str]) -> Optional[str]:
    """One sentence for a card whose base model is an xner asset (a converted copy): where its weights
    come from; None for any other base."""
    if not name_or_path or (hub_id(str(name_or_path)) and not os.path.isdir(str(name_or_path))):
        return None
    recorded = assets.provenance(str(name_or_path))
    if not recorded:
        return None
    how = recorded.get("note") or "converted by xner"
    source = f" ({recorded['source']})" if recorded.get("source") else ""
    return (
        f"The base model is {recorded.get('hub_id')} with its {how}{source}, converted offline by "
        "`xner assets prepare`."
    )


__all__ = ["KNOWN_PACKAGED_MODELS", "hub_id_of", "provenance_note"]
