"""Push projected datasets and trained models to the Hub: ``HfApi.create_repo`` + ``upload_folder``.

* :func:`publish_dataset` takes a ``run_projection`` output folder (``projection_summary.json`` +
  ``<lang>/`` DatasetDicts: the Hub layout and its card are written into a temporary folder and
  uploaded from there) or a folder already in Hub layout (written by
  :func:`model_cards.hub_layout.write_hub_dataset`; uploaded as it is).
* :func:`publish_model` takes a model folder (a full model or a LoRA adapter saved by
  :func:`training.students.save_student`). Its README.md is the model card; when it has none, the
  card is rendered from the folder's ``results.json``. Training checkpoints (``checkpoints/``) are
  not uploaded.

Nothing is written into the given folder: what is uploaded is staged in a temporary folder
(symbolic links to the large files) that is removed afterwards, whether the upload succeeded or
failed, so a failed upload leaves no half-written local state.

The token comes from ``token=`` or the usual ``huggingface_hub`` sources (``HF_TOKEN``, the file
``hf auth login`` writes). It is handed to ``HfApi`` only: never logged, never written to a file;
keys such as ``hub_token`` are dropped from the ``results.json`` that goes up with a model. With
``HF_HUB_OFFLINE=1`` both functions fail with :class:`HubOfflineError` before any network call.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any, Optional, Sequence, Union

from huggingface_hub import HfApi, constants, get_token
from huggingface_hub.utils import validate_repo_id

from model_cards.hub_layout import is_hub_layout, is_projection_output, write_hub_dataset
from model_cards.rendering import is_secret_key

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


def _push(folder: str, repo_id: str, repo_type: str, *, private: bool, revision: Optional[str], create_pr: bool,
          token: Union[str, bool, None], commit_message: str, endpoint: Optional[str],
          ignore_patterns: Optional[list] = None):
    api = HfApi(endpoint=endpoint, token=token)
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    if revision and not create_pr and not revision.startswith("refs/"):
        api.create_branch(repo_id, branch=revision, repo_type=repo_type, exist_ok=True)
    info = api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type=repo_type, revision=revision,
                             create_pr=create_pr, commit_message=commit_message, ignore_patterns=ignore_patterns)
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
    kwargs = dict(private=private, revision=revision, create_pr=create_pr, token=token, commit_message=message,
                  endpoint=endpoint)
    if folders and all(is_projection_output(f) for f in folders):
        with tempfile.TemporaryDirectory(prefix="xner-publish-") as staging:
            layout = write_hub_dataset(folders, os.path.join(staging, "dataset"), repo_id=repo_id,
                                       pretty_name=pretty_name, max_shard_size=max_shard_size)
            return _push(layout, repo_id, "dataset", **kwargs)
    if len(folders) == 1 and is_hub_layout(folders[0]):
        return _push(folders[0], repo_id, "dataset", ignore_patterns=[".*", "**/.*"], **kwargs)
    raise FileNotFoundError(
        f"{', '.join(folders)}: expected projection output folder(s) (with projection_summary.json) or one "
        f"dataset folder in Hub layout (README.md with 'configs:')"
    )


def _sanitised_results(path: str, token: Optional[str]) -> bytes:
    """``results.json`` without secret-looking keys (``hub_token``...) or the token's value."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not is_secret_key(k)}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if token and isinstance(value, str) and token in value:
            return "<redacted>"
        return value

    with open(path, encoding="utf-8") as handle:
        return (json.dumps(clean(json.load(handle)), indent=2) + "\n").encode()


def _stage_model(folder: str, staging: str, token: Optional[str], card_kwargs: dict, repo_id: str) -> None:
    """Link the model's files into ``staging`` (no copy), with a sanitised results.json and a card."""
    from model_cards.model_card import StudentCardData, TrainingResults, render_model_card

    for root, dirs, files in os.walk(folder):
        rel_root = os.path.relpath(root, folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (rel_root == "." and d == "checkpoints"))
        for name in sorted(files):
            if name.startswith(".") or name.endswith(".partial"):
                continue
            rel = os.path.normpath(os.path.join(rel_root, name))
            target = os.path.join(staging, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if rel == "results.json":
                with open(target, "wb") as handle:
                    handle.write(_sanitised_results(os.path.join(root, name), token))
            else:
                os.symlink(os.path.abspath(os.path.join(root, name)), target)
    readme = os.path.join(staging, "README.md")
    results = os.path.join(folder, "results.json")
    if os.path.lexists(readme) and not card_kwargs and (_is_xner_card(readme) or not os.path.isfile(results)):
        return  # the folder's own card
    if not os.path.isfile(results):
        raise FileNotFoundError(f"{folder} has no README.md (model card) and no results.json to write one from")
    if os.path.lexists(readme):
        logger.info("the model card is rendered from results.json (the folder's README.md is not an xner card)")
        os.remove(readme)  # the link, not the folder's file
    training = TrainingResults.load(results)
    if training.adapter and not os.path.isfile(os.path.join(folder, "adapter_config.json")):
        training.merged = True  # trained as LoRA, saved as a plain model
    card = render_model_card(StudentCardData.from_training(training, **{"model_id": repo_id, **card_kwargs}))
    with open(readme, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(card)


def _is_xner_card(path: str) -> bool:
    """Cards written by xner carry the ``xner`` tag; others (peft's template card that
    ``save_pretrained`` writes next to an adapter, ...) are replaced by a rendered one."""
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
    **card_kwargs: Any,
):
    """Push a trained model (full or LoRA adapter) to the model repo ``repo_id``; returns the ``CommitInfo``.

    The card is the folder's README.md when xner wrote it (:func:`~model_cards.model_card.write_model_card`);
    otherwise -- no README.md, or another one such as the template card peft writes next to an
    adapter -- and whenever ``card_kwargs`` (``license``, ``language``, ``limitations``...) are given,
    it is rendered from the folder's ``results.json`` for ``repo_id``.
    """
    check_online("the model")
    _check_args(repo_id, revision, create_pr)
    folder = os.fspath(folder)
    if not any(os.path.isfile(os.path.join(folder, f)) for f in ("config.json", "adapter_config.json")):
        raise FileNotFoundError(f"{folder} holds no model (no config.json or adapter_config.json)")
    secret = token if isinstance(token, str) else get_token()  # only to redact it from results.json
    with tempfile.TemporaryDirectory(prefix="xner-publish-") as staging:
        _stage_model(folder, staging, secret, card_kwargs, repo_id)
        return _push(staging, repo_id, "model", private=private, revision=revision, create_pr=create_pr,
                     token=token, commit_message=commit_message or "Upload NER model with xner", endpoint=endpoint)


__all__ = ["HubOfflineError", "check_online", "publish_dataset", "publish_model"]
