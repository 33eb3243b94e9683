"""Shared fixtures. The real corpora are found through $XNER_DATA_DIR (default: ../shared/data
next to the repository); tests that need them are skipped, with the reason shown, where it is absent."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
# No test may reach the network: the Hub is unreachable on these machines anyway, and an
# accidental download attempt should fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


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
