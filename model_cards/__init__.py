"""Dataset and model cards, the Hub layout of projected datasets, Hub push/pull and prediction.

* :mod:`model_cards.dataset_card`: :class:`ProjectedDatasetCardData`, filled from what a
  projection run did (``projection_summary.json`` and its :class:`~projection.pipelines.ProjectionConfig`),
  rendered through ``templates/dataset_card.md.j2``.
* :mod:`model_cards.model_card`: :class:`StudentCardData`, filled from what a training run did
  (:class:`training.results.RunResults` or its ``results.json``, read into :class:`TrainingResults`,
  the card's view of the run), rendered through
  ``templates/model_card.md.j2``; ``model-index`` has one entry per test set, marked in or out of domain.
* :mod:`model_cards.hub_layout`: :func:`write_hub_dataset` writes projected datasets as parquet
  shards, one config per target language (and per method when several), with the card.
* :mod:`model_cards.publish`: :func:`publish_dataset` and :func:`publish_model`
  (``HfApi.create_repo`` + ``upload_folder``).
* :mod:`model_cards.predict`: :func:`predict` -- word-level entities from a full or LoRA student,
  local or on the Hub.

Cards are deterministic: the same run gives the same bytes, online or offline (no timestamps,
host names, Hub look-ups or local paths; fixed ordering and number formats).
"""

from model_cards.dataset_card import ProjectedConfig, ProjectedDatasetCardData, render_dataset_card
from model_cards.model_card import EvalSet, StudentCardData, TrainingResults, render_model_card, write_model_card

__all__ = [
    "EvalSet",
    "ProjectedConfig",
    "ProjectedDatasetCardData",
    "StudentCardData",
    "TrainingResults",
    "render_dataset_card",
    "render_model_card",
    "write_model_card",
]
