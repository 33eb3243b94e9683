"""Honest model selection: the protocol and dev set chosen from what is available, target dev only when allowed."""

import json

import pytest

from dataset_builders.errors import UserError
from training.model_selection import SELECTION_PROTOCOLS, choose_selection

SOURCE = "conll2003:validation@en"
TARGET = "conll2002:validation@es"
AVAILABLE = {"source_dev": SOURCE, "source_lang": "en", "target_lang": "es", "target_dev": TARGET}


def test_default_is_translate_train_dev_where_an_mt_system_exists():
    selection = choose_selection(**AVAILABLE, mt_system="opus-mt-en-es")
    assert selection.protocol == "translate-train-dev"
    dev = selection.dev
    assert (dev.dataset, dev.language, dev.gold, dev.mt_system, dev.needs_projection) == (
        SOURCE,
        "es",
        False,
        "opus-mt-en-es",
        True,
    )
    # an already projected dev set is used as it is
    built = choose_selection(**AVAILABLE, mt_system="opus-mt-en-es", projected_dev="runs/dev-es-projected")
    assert (built.dev.dataset, built.dev.needs_projection) == ("runs/dev-es-projected", False)
    assert choose_selection(**AVAILABLE, projected_dev="runs/dev-es-projected").protocol == "translate-train-dev"


def test_default_is_source_dev_without_mt_even_when_target_dev_is_allowed():
    for allow in (False, True):
        selection = choose_selection(**AVAILABLE, allow_target_dev=allow)
        assert selection.protocol == "source-dev"
        assert (selection.dev.dataset, selection.dev.language, selection.dev.gold) == (SOURCE, "en", True)


def test_target_dev_is_refused_unless_explicitly_allowed():
    with pytest.raises(UserError, match="zero-shot cross-lingual work assumes it does not have"):
        choose_selection("target-dev", **AVAILABLE, mt_system="opus-mt-en-es")
    selection = choose_selection("target-dev", **AVAILABLE, allow_target_dev=True)
    assert (selection.protocol, selection.dev.dataset, selection.dev.language, selection.dev.gold) == (
        "target-dev",
        TARGET,
        "es",
        True,
    )
    assert selection.record()["gold_target_dev_used"] is True
    with pytest.raises(UserError, match="needs a target dev set"):
        choose_selection("target-dev", source_dev=SOURCE, allow_target_dev=True)


def test_requested_protocols_need_their_dev_sets():
    assert choose_selection("source-dev", **AVAILABLE, mt_system="m").protocol == "source-dev"
    with pytest.raises(UserError, match="'translate-train-dev' needs a projected dev set"):
        choose_selection("translate-train-dev", **AVAILABLE)
    with pytest.raises(UserError, match="'source-dev' needs a source dev set"):
        choose_selection("source-dev", projected_dev="p")
    with pytest.raises(UserError, match="no dev set for model selection"):
        choose_selection(mt_system="m")  # an MT system alone has nothing to translate
    with pytest.raises(UserError, match="must be one of source-dev, translate-train-dev, target-dev, got 'test'"):
        choose_selection("test", **AVAILABLE)
    assert SELECTION_PROTOCOLS == ("source-dev", "translate-train-dev", "target-dev")


def test_record_is_json_ready_and_says_what_was_used():
    record = choose_selection(**AVAILABLE, mt_system="opus-mt-en-es").record()
    assert json.loads(json.dumps(record)) == record
    assert record["selection"] == "translate-train-dev"
    assert record["gold_target_dev_used"] is False and record["target_dev_allowed"] is False
    assert record["dev_set"]["mt_system"] == "opus-mt-en-es"
    assert record["reason"].startswith("default")
