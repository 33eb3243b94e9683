"""One-line user errors for models that cannot be loaded (a wrong path or Hub id, offline, wrong kind)."""

from __future__ import annotations

from dataset_builders.errors import UserError


def model_load_error(role: str, name: str, err: BaseException) -> UserError:
    """``UserError`` naming the ``role`` ("translator", "aligner") and model; transformers' loading
    errors run to a paragraph, so only their first line is kept."""
    text = str(err).strip()
    reason = text.splitlines()[0] if text else type(err).__name__
    return UserError(f"{role} model {name!r} cannot be loaded: {reason}")
