"""Push projected datasets and trained models to the Hub: ``HfApi.create_repo`` + ``upload_folder``.

* :func:`publish_dataset` takes a ``run_projection`` output folder (``projection_summary.json`` +
  ``<lang>/`` DatasetDicts: the Hub layout and its card are written into a temporary folder and
  uploaded from there) or a folder already in Hub layout (written by
  :func:`model_cards.hub_layout.write_hub_dataset`; uploaded as it is).
* :func:`publish_model` takes a model folder (a full model or a LoRA adapter saved by
  :func:`training.students.save_student`). Its README.md is the model card; when it has none, the
  card is rendered from the folder's ``results.json``. Training checkpoints (``checkpoints/``) and
  self-training's intermediate students and cached teacher columns (``rounds/``) are not uploaded.

Nothing is written into the given folder: what is uploaded is staged in a temporary folder
(symbolic links to the large files) that is removed afterwards, whether the upload succeeded or
failed, so a failed upload leaves no half-written local state.

The token comes from ``token=`` or the usual ``huggingface_hub`` sources (``HF_TOKEN``, the file
``hf auth login`` writes). It is handed to ``HfApi`` only: never logged, never written to a file;
keys such as ``hub_token`` are dropped from the ``results.json`` that goes up with a model. With
``HF_HUB_OFFLINE=1`` both functions fail with :class:`HubOfflineError` before any network call.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from typing import Any, Callable, Optional, Sequence, Union

from huggingface_hub import HfApi, constants, get_session, get_token
from huggingface_hub.utils import validate_repo_id

from dataset_builders.errors import UserError
from model_cards.base_models import hub_id_of, provenance_note
from model_cards.hub_layout import is_hub_layout, is_projection_output, write_hub_dataset
from model_cards.rendering import is_local_path, is_secret_key, scrub_paths
from training.self_training import ROUNDS_DIR

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class HubOfflineError(RuntimeError):
    """Publishing was asked for while ``HF_HUB_OFFLINE`` is set: nothing was sent."""


def check_online(what: str) -> None:
    if constants.HF_HUB_OFFLINE:
        raise HubOfflineError(
            f"cannot publish {what}: offline mode is on (HF_HUB_OFFLINE=1); unset HF_HUB_OFFLINE to push to the Hub"
        )


def _check_args(repo_id: str, revision: Optional[str], create_pr: bool) -> None:
    validate_repo_id(repo_id)
    if "/" not in repo_id:
        raise ValueError(f"repo id {repo_id!r} needs a namespace: 'user-or-org/name'")
    if create_pr and revision not in (None, constants.DEFAULT_REVISION):
        raise ValueError("--create-pr opens a pull request against the default branch: do not give --revision too")


# Every request of a push has a time limit, and a push that timed out or could not connect is tried
# again a bounded number of times: an endpoint that accepts the connection and never answers must
# not hang the command (huggingface_hub's shared client has no timeout of its own).
HUB_TIMEOUT_S = float(os.environ.get("XNER_HUB_TIMEOUT", "60"))
HUB_ATTEMPTS = 3
# Top-level folders of a model folder that are training state, not the model: accelerate checkpoints and
# self-training's intermediate students with their cached teacher columns.
NOT_PUBLISHED = ("checkpoints", ROUNDS_DIR)


class HubUnreachableError(UserError):
    """The Hub endpoint did not answer (timeout) or could not be reached, after the bounded retries."""


@contextlib.contextmanager
def bounded_requests(timeout: float):
    """Give huggingface_hub's shared HTTP client a ``timeout`` (seconds) for the duration of the block."""
    session = get_session()
    previous = session.timeout
    session.timeout = timeout
    try:
        yield
    finally:
        session.timeout = previous


def _network_errors() -> tuple:
    import huggingface_hub.utils._http as hub_http  # the HTTP library huggingface_hub uses (httpx or its fork)

    httpx = hub_http.httpx2 if hasattr(hub_http, "httpx2") else hub_http.httpx
    return (httpx.TimeoutException, httpx.TransportError, TimeoutError, ConnectionError)


def with_retries(
    call: Callable[[], Any],
    endpoint: Optional[str],
    *,
    timeout: Optional[float] = None,
    attempts: Optional[int] = None,
    what: str = "push",
) -> Any:
    """``call()`` with a time limit on every request, tried up to ``attempts`` times on timeouts and
    connection errors; then a one-line :class:`HubUnreachableError` that names the endpoint."""
    timeout = HUB_TIMEOUT_S if timeout is None else timeout
    attempts = HUB_ATTEMPTS if attempts is None else max(1, attempts)
    errors = _network_errors()
    url = endpoint or constants.ENDPOINT
    for attempt in range(1, attempts + 1):
        try:
            with bounded_requests(timeout):
                return call()
        except errors as err:
            reason = "did not answer" if "timeout" in type(err).__name__.lower() else "could not be reached"
            if attempt == attempts:
                raise HubUnreachableError(
                    f"{what}: the Hub endpoint {url} {reason} ({attempts} attempts, {timeout:g} s limit per "
                    f"request; XNER_HUB_TIMEOUT sets it): {type(err).__name__}"
                ) from None
            logger.warning("%s: %s %s (attempt %d of %d); trying again", what, url, reason, attempt, attempts)
            time.sleep(min(2 ** (attempt - 1), 8))


def _push(
    folder: str,
    repo_id: str,
    repo_type: str,
    *,
    timeout: Optional[float] = None,
    attempts: Optional[int] = None,
    **push: Any,
):
    """:func:`_push_once` (whose keyword arguments ``push`` are) with a timeout and bounded retries."""
    return with_retries(
        lambda: _push_once(folder, repo_id, repo_type, **push),
        push.get("endpoint"),
        timeout=timeout,
        attempts=attempts,
        what=f"pushing to {repo_id}",
    )


def _push_once(
    folder: str,
    repo_id: str,
    repo_type: str,
    *,
    private: bool,
    revision: Optional[str],
    create_pr: bool,
    token: Union[str, bool, None],
    commit_message: str,
    endpoint: Optional[str],
    ignore_patterns: Optional[list] = None,
):
    api = HfApi(endpoint=endpoint, token=token)
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if revision and not create_pr and not revision.startswith("refs/"):
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        repo_type=repo_type,
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message,
        ignore_patterns=ignore_patterns,
    )
    logger.info("pushed %s to %s (commit %s)", folder, url, info.oid)
    return info


def publish_dataset(
    folder: Union[PathLike, Sequence[PathLike]],
    repo_id: str,
    private: bool = False,
    revision: Optional[str] = None,
    create_pr: bool = False,
    token: Union[str, bool, None] = None,
    *,
    commit_message: Optional[str] = None,
    pretty_name: Optional[str] = None,
    max_shard_size: Union[int, str] = "500MB",
    endpoint: Optional[str] = None,
    timeout: Optional[float] = None,
    attempts: Optional[int] = None,
):
    """Push a projected dataset to the dataset repo ``repo_id`` (created if missing); returns the ``CommitInfo``.

    ``folder``: a ``run_projection`` output folder (or several, e.g. one per method: one config each),
    or a folder in Hub layout. ``private`` applies when the repo is created; ``revision`` is a branch
    (created from main when missing); ``create_pr`` opens a pull request instead of committing to main.
    """
    check_online("the dataset")
    _check_args(repo_id, revision, create_pr)
    folders = [os.fspath(folder)] if isinstance(folder, (str, os.PathLike)) else [os.fspath(f) for f in folder]
    message = commit_message or "Upload projected NER dataset with xner"
    kwargs = dict(
        private=private,
        revision=revision,
        create_pr=create_pr,
        token=token,
        commit_message=message,
        endpoint=endpoint,
        timeout=timeout,
        attempts=attempts,
    )
    if folders and all(is_projection_output(f) for f in folders):
        with tempfile.TemporaryDirectory(prefix="xner-publish-") as staging:
            layout = write_hub_dataset(
                folders,
                os.path.join(staging, "dataset"),
                repo_id=repo_id,
                pretty_name=pretty_name,
                max_shard_size=max_shard_size,
            )
            return _push(layout, repo_id, "dataset", **kwargs)
    if len(folders) == 1 and is_hub_layout(folders[0]):
        return _push(folders[0], repo_id, "dataset", ignore_patterns=[".*", "**/.*"], **kwargs)
    raise FileNotFoundError(
        f"{', '.join(folders)}: expected projection output folder(s) (with projection_summary.json) or one "
        f"dataset folder in Hub layout (README.md with 'configs:')"
    )


class Portable:
    """Makes what goes up free of the training machine's paths: the base model's local folder becomes its
    Hub id, any other absolute path its last component (``runs/t1`` -> ``t1 (local)``); secret-looking
    keys and the token's value are dropped."""

    def __init__(self, base_path: Optional[str], base_id: Optional[str], token: Optional[str]):
        self.base_paths = set()
        if base_path and is_local_path(base_path):
            for variant in (base_path, os.path.abspath(base_path), os.path.realpath(base_path)):
                self.base_paths |= {variant, variant.rstrip("/")}
        self.base_id, self.token = base_id, token

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items() if not is_secret_key(k)}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if not isinstance(value, str):
            return value
        if self.token and self.token in value:
            return "<redacted>"
        if value in self.base_paths or value.rstrip("/") in self.base_paths:
            return self.base_id
        if os.path.isabs(value) and hub_id_of(value):
            return hub_id_of(value)
        return scrub_paths(value)

    def json_bytes(self, path: str, **overrides: Any) -> bytes:
        """The JSON file made portable; its own bytes when nothing needed changing."""
        with open(path, "rb") as handle:
            raw = handle.read()
        original = json.loads(raw)
        values = self.value(original)
        if isinstance(values, dict):
            values.update(overrides)
        if values == original:
            return raw
        return (json.dumps(values, indent=2, ensure_ascii=False) + "\n").encode()


def _base_model_path(folder: str) -> Optional[str]:
    """The base model the folder's model was trained from: its results.json says, else its adapter config."""
    results = os.path.join(folder, "results.json")
    if os.path.isfile(results):
        from model_cards.model_card import TrainingResults

        return TrainingResults.load(results).base_model
    adapter = os.path.join(folder, "adapter_config.json")
    if os.path.isfile(adapter):
        with open(adapter, encoding="utf-8") as handle:
            return json.load(handle).get("base_model_name_or_path")
    return None


def resolve_base_model_id(folder: str, base_model_id: Optional[str] = None) -> tuple[Optional[str], Optional[str]]:
    """``(local base path or id, its Hub id)``; a base with no known Hub id is a :class:`UserError`
    unless ``base_model_id`` names it."""
    base = _base_model_path(folder)
    if base_model_id:
        validate_repo_id(base_model_id)
        return base, base_model_id
    if base is None:
        return None, None
    found = hub_id_of(base)
    if found is None:
        raise UserError(
            f"{folder}: the base model {base} has no known Hub id, and a published model must not name a "
            f"local path; give it with --base_model_id ORG/NAME (base_model_id=...)"
        )
    return base, found


def _write_self_contained_adapter(folder: str, staging: str, portable: Portable, repo_id: str) -> None:
    """An adapter that every standard loader opens with no argument, also on a machine without the
    local base model.

    Neither transformers nor peft can build a head with the student's labels from a bare base model:
    both take the head's size from the base's config (``num_labels=2`` for an encoder), so the saved
    head does not fit. The repo therefore also holds the base weights with the student's head and
    config (``config.json``: ``*ForTokenClassification``, id2label; ``model.safetensors``: the base
    without the LoRA layers, from peft's ``unload``), and ``adapter_config.json`` names the repo itself
    as its base: ``AutoPeftModelForTokenClassification``, ``AutoModelForTokenClassification`` and
    ``pipeline`` then apply the adapter to those weights. The real base's Hub id is the card's
    ``base_model``; ``PeftModel.from_pretrained(<that base with the labels>, repo)`` reads only the
    adapter files, as usual.
    """
    from training.students import load_student

    with tempfile.TemporaryDirectory(prefix="xner-unload-") as unloaded:
        load_student(folder).unload().save_pretrained(unloaded)
        for name in os.listdir(unloaded):
            target = os.path.join(staging, name)
            if os.path.lexists(target):
                os.remove(target)
            if name.endswith(".json"):
                with open(target, "wb") as handle:
                    handle.write(portable.json_bytes(os.path.join(unloaded, name)))
            else:
                os.replace(os.path.join(unloaded, name), target)
    target = os.path.join(staging, "adapter_config.json")
    os.remove(target)
    with open(target, "wb") as handle:
        handle.write(
            portable.json_bytes(
                os.path.join(folder, "adapter_config.json"), base_model_name_or_path=repo_id, revision=None
            )
        )


def _stage_model(
    folder: str,
    staging: str,
    token: Optional[str],
    card_kwargs: dict,
    repo_id: str,
    base_model_id: Optional[str] = None,
) -> None:
    """Stage the model's files in ``staging``: large files linked (no copy), JSON files made portable
    (:class:`Portable`), an adapter made self-contained, and the card rendered for ``repo_id``."""
    from model_cards.model_card import StudentCardData, TrainingResults, render_model_card

    base, base_id = resolve_base_model_id(folder, base_model_id)
    portable = Portable(base, base_id, token)
    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (rel_root == "." and d in NOT_PUBLISHED))
        for name in sorted(files):
            if name.startswith(".") or name.endswith(".partial"):
                continue
            rel = os.path.normpath(os.path.join(rel_root, name))
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if name.endswith(".json") and os.path.getsize(os.path.join(root, name)) < 50 * 2**20:
                with open(target, "wb") as handle:
                    handle.write(portable.json_bytes(os.path.join(root, name)))
            else:
                os.symlink(os.path.abspath(os.path.join(root, name)), target)
    if os.path.isfile(os.path.join(folder, "adapter_config.json")):
        _write_self_contained_adapter(folder, staging, portable, repo_id)
    readme = os.path.join(staging, "README.md")
    results = os.path.join(folder, "results.json")
    if not os.path.isfile(results):
        if os.path.lexists(readme) and _is_xner_card(readme):
            return  # the folder's own card
        raise FileNotFoundError(f"{folder} has no README.md (model card) and no results.json to write one from")
    if os.path.lexists(readme):
        os.remove(readme)  # the link, not the folder's file: the card is rendered for this repo
    # Read here (teacher folders are on this machine), then made portable like the uploaded files.
    training = TrainingResults(**portable.value(TrainingResults.load(results).to_dict()))
    if training.adapter and not os.path.isfile(os.path.join(folder, "adapter_config.json")):
        training.merged = True  # trained as LoRA, saved as a plain model
    # The note is read from the local base before its path became a Hub id in ``training``.
    card_kwargs = {"model_id": repo_id, "base_model_note": provenance_note(base), **card_kwargs}
    card = render_model_card(StudentCardData.from_training(training, **card_kwargs))
    with open(readme, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(card)


def _is_xner_card(path: str) -> bool:
    """Cards written by xner carry the ``xner`` tag; others (peft's template card that
    ``save_pretrained`` writes next to an adapter, ...) are not used."""
    from huggingface_hub import ModelCard

    try:
        return "xner" in (ModelCard.load(path, ignore_metadata_errors=True).data.get("tags") or [])
    except Exception:
        return False


def publish_model(
    folder: PathLike,
    repo_id: str,
    private: bool = False,
    revision: Optional[str] = None,
    create_pr: bool = False,
    token: Union[str, bool, None] = None,
    *,
    commit_message: Optional[str] = None,
    endpoint: Optional[str] = None,
    base_model_id: Optional[str] = None,
    timeout: Optional[float] = None,
    attempts: Optional[int] = None,
    **card_kwargs: Any,
):
    """Push a trained model (full, merged, or LoRA adapter) to the model repo ``repo_id``; returns the ``CommitInfo``.

    What goes up is portable: the local base model is named by its Hub id (found by
    :func:`model_cards.base_models.hub_id_of`, or ``base_model_id``; none is a :class:`UserError`), other
    local paths by their last component; an adapter is made loadable with no argument by every
    standard loader (see :func:`_write_self_contained_adapter`). The card is rendered from the
    folder's ``results.json`` for ``repo_id`` (``card_kwargs``: ``license``, ``language``,
    ``limitations``...); a folder without results.json needs its own xner card (README.md).
    """
    check_online("the model")
    _check_args(repo_id, revision, create_pr)
    folder = os.fspath(folder)
    if not any(os.path.isfile(os.path.join(folder, f)) for f in ("config.json", "adapter_config.json")):
        raise FileNotFoundError(f"{folder} holds no model (no config.json or adapter_config.json)")
    secret = token if isinstance(token, str) else get_token()  # only to redact it from results.json
    with tempfile.TemporaryDirectory(prefix="xner-publish-") as staging:
        _stage_model(folder, staging, secret, card_kwargs, repo_id, base_model_id)
        return _push(
            staging,
            repo_id,
            "model",
            private=private,
            revision=revision,
            create_pr=create_pr,
            token=token,
            commit_message=commit_message or "Upload NER model with xner",
            endpoint=endpoint,
            timeout=timeout,
            attempts=attempts,
        )


__all__ = [
    "HubOfflineError",
    "HubUnreachableError",
    "Portable",
    "check_online",
    "publish_dataset",
    "publish_model",
    "resolve_base_model_id",
    "with_retries",
]
