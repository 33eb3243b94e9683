"""Concurrent and interrupted ``xner experiment run``, with real processes (issue 13, item 12).

One lock per results store: a second run refuses at once naming the holder's pid, or waits with
``--wait``. The training child ends with its parent: on SIGTERM or SIGINT (its process group is
stopped) and even on SIGKILL (the kernel's parent-death signal). Each test is bounded by timeouts.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import yaml

from dataset_builders import load_corpus
from tests.test_experiments import tiny_config
from tests.tiny_models import build_tiny_bert

REPO = pathlib.Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; flock and prctl")


def _env() -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status is left


def _children(pid: int, marker: str) -> list[int]:
    """Processes whose parent is ``pid`` and whose command line holds ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and marker in cmdline:
            found.append(int(entry))
    return found


def _wait_until(condition, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    texts = [" ".join(row) for row in load_corpus("xner-sample")["train"]["tokens"]]
    return build_tiny_bert(str(tmp_path_factory.mktemp("model") / "tiny-bert"), texts, vocab_size=300)


def _experiment_file(tmp_path: pathlib.Path, model: str, real_data_dir) -> pathlib.Path:
    config = tiny_config(model, tmp_path / "out", real_data_dir)
    config.pop("sweeps")
    config["strategies"] = {"hard": {"teachers": ["en"]}}
    config["groups"] = [{"name": "main", "languages": ["en"], "strategies": ["hard"], "seeds": [1]}]
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _hold_store(store: pathlib.Path) -> subprocess.Popen:
    """A process that holds the store's lock (as a running experiment would) until its stdin is closed."""
    code = textwrap.dedent(f"""
        import sys
        from xner.experiments.store import locked
        with locked({str(store)!r}):
            print("holding", flush=True)
            sys.stdin.read()
    """)
    holder = subprocess.Popen(
        [sys.executable, "-c", code], env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_run_of_the_store_refuses_at_once_naming_the_holder(tmp_path, tiny_model, real_data_dir):
    path = _experiment_file(tmp_path, tiny_model, real_data_dir)
    store = tmp_path / "out" / "results.jsonl"
    holder = _hold_store(store)
    try:
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "xner", "experiment", "run", str(path)],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 2, second.stdout + second.stderr
        assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr
        assert f"is in use by pid {holder.pid} (" in second.stderr and "--wait" in second.stderr
        assert time.monotonic() - started < 60  # refused, not waited
        assert not store.exists() and not (tmp_path / "out" / "teachers").exists()  # nothing was run
    finally:
        holder.kill()
        holder.wait()


def test_wait_waits_for_the_holder_then_runs(tmp_path, real_data_dir):
    """With --wait the run starts once the holder ends (here it then fails fast: its model folder is empty)."""
    (tmp_path / "empty-model").mkdir()
    path = _experiment_file(tmp_path, str(tmp_path / "empty-model"), real_data_dir)
    holder = _hold_store(tmp_path / "out" / "results.jsonl")
    second = subprocess.Popen(
        [sys.executable, "-m", "xner", "experiment", "run", str(path), "--wait"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(180, second.kill)
    watchdog.start()
    try:
        assert f"waiting for pid {holder.pid}" in second.stdout.readline()
        time.sleep(1)
        assert second.poll() is None and not (tmp_path / "out" / "teachers").exists()  # still waiting
        holder.stdin.close()  # the holder ends: the waiting run goes on
        out, err = second.communicate(timeout=170)
    finally:
        watchdog.cancel()
        holder.kill()
        holder.wait()
    assert second.returncode == 2 and "teacher en" in err and "failed with exit status" in err, out + err


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_the_training_child_ends_with_its_parent(how, tmp_path, tiny_model, real_data_dir):
    path = _experiment_file(tmp_path, tiny_model, real_data_dir)
    parent = subprocess.Popen(
        [sys.executable, "-m", "xner", "experiment", "run", str(path)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A terminal's Ctrl-C: where the suite itself runs in the background (`cmd &`), SIGINT arrives ignored
        # and Python keeps ignoring it, as a user's `nohup xner experiment run ... &` rightly does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert _wait_until(lambda: _children(parent.pid, "training.teacher"), timeout=90), "no training child started"
        (child,) = _children(parent.pid, "training.teacher")
        parent.send_signal(how)
        _, err = parent.communicate(timeout=60)
        # Gone with the parent: not left to die later of a broken pipe (when it next prints), nor to run on.
        assert _wait_until(lambda: not _alive(child), timeout=3), f"training child {child} outlived its parent"
        if how != signal.SIGKILL:  # the parent stopped it and says so, in one line
            assert parent.returncode == 2, err
            assert err.count("\n") == 1 and "finished runs are kept" in err and "Traceback" not in err
            assert ("SIGTERM" in err) == (how == signal.SIGTERM)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        for pid in _children(parent.pid, "training.teacher"):
            os.kill(pid, signal.SIGKILL)
