"""Fixtures shared by the training tests; a test module uses them by importing them."""

import os
import pathlib
import subprocess
import sys

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


REPO = pathlib.Path(__file__).resolve().parent.parent
# ``accelerate launch`` as a CPU-only machine runs it, one process, no config file needed.
ACCELERATE_CPU_LAUNCH = ("launch", "--num_processes", "1", "--num_machines", "1", "--cpu", "--mixed_precision", "no",
                         "--dynamo_backend", "no")  # fmt: skip


def run_accelerate_launch(module: str, args, tmp_path) -> None:
    """``accelerate launch -m module args`` offline from the repository root; fails the test with its stderr."""
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    command = [launcher, *ACCELERATE_CPU_LAUNCH, "-m", module, *[str(a) for a in args]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
