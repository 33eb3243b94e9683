"""Fixtures shared by the training tests; a test module uses them by importing them."""

import pytest
from accelerate.state import AcceleratorState, GradientState

from dataset_builders import load_corpus


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each run stands for a new process: no accelerate state may leak from one to the next."""
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    yield
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


@pytest.fixture(scope="module")
def sample():
    return load_corpus("xner-sample")["train"]  # 18 sentences, CoNLL labels
