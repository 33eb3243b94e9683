"""What a training run does around the loop: ``--push_to_hub`` at its end, trackers checked at its start.

**Pushing without importing a layer above.** Publishing (card, portable files, upload) lives in
``model_cards``, which sits above ``training``; training must not import it. A training entry point
therefore calls a *publisher* found at run time: the one registered with :func:`set_publisher`, else
the ``model`` entry point of the group ``xner.publishers`` that the installed distribution declares
(setup.cfg: ``model_cards.publish:publish_model``). The entry point is what makes
``accelerate launch -m training.teacher --push_to_hub ...`` work: no higher-layer command runs
there to register anything, while the package metadata is present wherever xner is installed. (An
entry point in a higher layer, e.g. ``-m model_cards.train``, would have broken the documented
``accelerate launch -m training.X`` habit.) So ``xner publish model`` and ``--push_to_hub`` run the
same code. Everything that can be refused is refused before training (:func:`check_run_options`).

**Trackers.** With ``--with_tracking``, accelerate quietly logs nowhere when no tracker is
installed; here that is an error naming the extra to install.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any, Callable, Optional

from dataset_builders.errors import UserError

logger = logging.getLogger(__name__)

PUBLISHERS_GROUP = "xner.publishers"
TRACKING_EXTRA = "pip install 'xner[tracking]'"
Publisher = Callable[..., Any]
_publisher: Optional[Publisher] = None


class Secret:
    """A token kept on the parsed arguments without being written anywhere: it is not a ``str`` (run
    records keep only plain values) and its ``repr`` hides it."""

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "Secret('<hidden>')"


def set_publisher(publisher: Optional[Publisher]) -> None:
    """Register ``publisher(folder, repo_id, *, token, base_model_id, private)`` (None: unregister)."""
    global _publisher
    _publisher = publisher


def find_publisher() -> Optional[Publisher]:
    if _publisher is not None:
        return _publisher
    for entry_point in importlib.metadata.entry_points(group=PUBLISHERS_GROUP):
        if entry_point.name == "model":
            return entry_point.load()
    return None


def check_run_options(hub: Any, loop: Any) -> None:
    """Refuse, before any training, a push (``hub``: :class:`training.arguments.HubArguments`) or a
    tracking request (``loop``: :class:`training.arguments.LoopArguments`) that could not be honoured."""
    if loop.with_tracking:
        check_trackers(loop.report_to)
    if not hub.push_to_hub:
        return
    if not hub.hub_model_id:
        raise UserError("--push_to_hub needs --hub_model_id user-or-org/name")
    if find_publisher() is None:
        raise UserError(
            f"--push_to_hub: no publisher installed (entry point group {PUBLISHERS_GROUP!r}); "
            "install xner itself (pip install xner), which provides model_cards"
        )


def check_trackers(report_to: str) -> None:
    """``--report_to`` names trackers that are installed; ``all`` needs at least one."""
    from accelerate.tracking import get_available_trackers

    available = {str(getattr(t, "value", t)) for t in get_available_trackers()}
    wanted = [name.strip() for name in str(report_to or "all").split(",") if name.strip()]
    if "all" in wanted and not available:
        raise UserError(f"--with_tracking: no experiment tracker is installed; {TRACKING_EXTRA} (tensorboard)")
    missing = [name for name in wanted if name != "all" and name not in available]
    if missing:
        raise UserError(
            f"--report_to {','.join(missing)}: not installed (available: "
            f"{', '.join(sorted(available)) or 'none'}); {TRACKING_EXTRA} brings tensorboard"
        )


def push_at_end(hub: Any, output_dir: str) -> Any:
    """Publish ``output_dir`` to ``hub.hub_model_id`` from the main process (others return None)."""
    if not hub.push_to_hub:
        return None
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return None
    publisher = find_publisher()
    token = hub.hub_token.value if hub.hub_token else None
    info = publisher(
        output_dir, hub.hub_model_id, token=token, private=hub.hub_private_repo, base_model_id=hub.base_model_id
    )
    print(f"pushed {output_dir} to {hub.hub_model_id}: {getattr(info, 'commit_url', info)}")
    return info


__all__ = [
    "PUBLISHERS_GROUP",
    "Secret",
    "check_run_options",
    "check_trackers",
    "find_publisher",
    "push_at_end",
    "set_publisher",
]
