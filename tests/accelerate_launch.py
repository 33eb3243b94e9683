"""``accelerate launch`` of a training module in a subprocess, as a CPU-only machine runs it (a helper, not a fixture)."""

import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent

# ``accelerate launch`` as a CPU-only machine runs it, one process, no config file needed.
ACCELERATE_CPU_LAUNCH = (
    "launch",
    "--num_processes",
    "1",
    "--num_machines",
    "1",
    "--cpu",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
)


def run_accelerate_launch(module: str, args, tmp_path) -> None:
    """``accelerate launch -m module args`` offline from the repository root; fails the test with its stderr."""
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    command = [launcher, *ACCELERATE_CPU_LAUNCH, "-m", module, *[str(a) for a in args]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, launch_failure(done.stderr)


def launch_failure(stderr: str, limit: int = 3000) -> str:
    """What a failed launch said: the first failing worker's traceback (the launcher's teardown noise and the
    other ranks' broken-connection errors come after it), else the end of stderr."""
    start = stderr.find("Traceback (most recent call last)")
    return stderr[start : start + limit] if start >= 0 else stderr[-limit:]
