"""Shared fixtures, found by pytest in every test module (never imported). The real corpora are found
through $XNER_DATA_DIR (default: ../shared/data next to the repository); tests that need them are
skipped, with the reason shown, where it is absent."""

import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# No test may reach the network: the Hub is unreachable on these machines anyway, and an
# accidental download attempt should fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

# Fixtures that several test modules share, each in the module named for what it builds.
pytest_plugins = ["tests.fixtures.hub", "tests.fixtures.training"]


def data_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("XNER_DATA_DIR", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def real_data_dir() -> pathlib.Path:
    path = data_dir()
    if not path.is_dir():
        pytest.skip(f"real corpora not found at {path} (set XNER_DATA_DIR)")
    return path


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory) -> str:
    """A datasets cache private to this test session."""
    return str(tmp_path_factory.mktemp("hf_cache"))


def _reset_accelerate_state() -> None:
    # Only where accelerate is loaded: a test that never imported it has no state to reset, and
    # conftest stays cheap to import for the tests that need no training stack.
    if "accelerate.state" in sys.modules:
        from accelerate.state import AcceleratorState, GradientState

        AcceleratorState._reset_state(True)
        GradientState._reset_state()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each test stands for a new process: no accelerate state may leak from one test to the next."""
    _reset_accelerate_state()
    yield
    _reset_accelerate_state()


@pytest.fixture(scope="module")
def sample():
    """The built-in ``xner-sample`` corpus, train split: 18 sentences with CoNLL labels."""
    from dataset_builders import load_corpus

    return load_corpus("xner-sample")["train"]
