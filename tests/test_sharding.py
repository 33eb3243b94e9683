"""One worker per device for model-based map steps (training.devices), on CPU with 2 processes.

Covers: rank -> device with 2 mocked GPUs (the helper projection uses too); the start method
(spawn only for device pools when CUDA is present); teacher probabilities from 2 worker processes
equal to one process's, rows in order, and reused from the cache by another rank, device or
num_proc; the same under spawn (what CUDA needs); ``distill --teacher_num_proc``; and
``accelerate launch`` with 2 processes computing the column once, with both workers, on rank 0.
"""

import contextlib
import json
import os
import subprocess
import sys

import multiprocess
import numpy as np
import pytest
import torch
from datasets import Dataset, load_from_disk

from dataset_builders.errors import UserError
from tests.accelerate_launch import REPO, launch_failure
from tests.tiny_models import build_tiny_bert
from training import devices
from training.teacher_probs import (
    TeacherProbabilities,
    add_teacher_probs,
    teacher_num_proc,
)

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SENTENCES = [
    ["Angela", "Merkel", "met", "Emmanuel", "Macron", "in", "Paris", "."],
    ["Nairobi", "hosts", "the", "United", "Nations", "."],
    ["Barack", "Obama", "visited", "Madrid", ",", "Lisbon", "and", "Rome"] * 3,  # cut into windows
    [],
    ["Merkel", "visited", "Lisbon", "."],
    ["Obama"],
    ["Macron", "and", "Merkel", "met", "in", "Rome", "."],
]
MAX_LENGTH = 16


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    texts = [" ".join(s) for s in SENTENCES if s]
    return build_tiny_bert(
        str(tmp_path_factory.mktemp("teacher") / "t"), texts, id2label=dict(enumerate(LABELS)), seed=3
    )


def on_disk(path):
    """A fresh on-disk copy of the corpus: its own cache folder, so nothing is read from another test's cache."""
    Dataset.from_dict({"tokens": SENTENCES}).save_to_disk(str(path))
    return load_from_disk(str(path))


def teacher(path, **kwargs):
    return TeacherProbabilities(path, max_length=MAX_LENGTH, batch_size=2, **kwargs)


def probs_of(dataset):
    return [np.asarray(p, dtype=np.float32).reshape(len(p), len(LABELS)) for p in dataset["teacher_probs"]]


def fake_gpus(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_rank_to_device(monkeypatch):
    assert devices.rank_device(None) is None
    fake_gpus(monkeypatch, 0)
    assert devices.rank_device(1) is None and devices.default_num_proc() is None
    fake_gpus(monkeypatch, 2)
    assert [devices.rank_device(r) for r in range(4)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert devices.rank_device(None) is None  # in-process: the transform's own device
    assert devices.default_num_proc() == 2
    fake_gpus(monkeypatch, 1)
    assert devices.default_num_proc() is None  # one GPU: no pool
    import projection.transforms

    assert projection.transforms.rank_device is devices.rank_device  # one helper for both packages


def test_teacher_num_proc_default_and_errors(monkeypatch, teacher_dir):
    fake_gpus(monkeypatch, 2)
    assert teacher_num_proc(None, [teacher(teacher_dir, device="cuda:1")]) == 2  # accelerate rank 1: all GPUs
    assert teacher_num_proc(None, [teacher(teacher_dir, device="cpu")]) is None  # launched with --cpu
    assert teacher_num_proc(3, [teacher(teacher_dir)]) == 3
    fake_gpus(monkeypatch, 0)
    assert teacher_num_proc(None, [teacher(teacher_dir)]) is None
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UserError, match="--teacher_num_proc"):
            teacher_num_proc(bad, [])


def test_each_rank_loads_the_teacher_on_its_gpu(monkeypatch, teacher_dir):
    fake_gpus(monkeypatch, 2)
    loaded = []

    class FakeTagger:
        def word_probabilities(self, sentences):
            return [np.full((len(s), len(LABELS)), 1 / len(LABELS), dtype=np.float32) for s in sentences]

    def from_pretrained(path, *, device=None, **kwargs):
        loaded.append(device)
        return FakeTagger()

    monkeypatch.setattr("training.teacher_probs.WordTagger.from_pretrained", from_pretrained)
    for rank in (0, 1, 2):
        transform = teacher(teacher_dir, device="cuda:1")  # as a fresh worker gets it
        out = transform({"tokens": SENTENCES[:2]}, rank=rank)
        assert [len(p) for p in out["teacher_probs"]] == [len(s) for s in SENTENCES[:2]]
    teacher(teacher_dir, device="cuda:1")({"tokens": SENTENCES[:1]})  # in-process: the device it was given
    assert loaded == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]


def test_start_method_is_spawn_only_for_device_pools_with_cuda(monkeypatch):
    before = multiprocess.get_start_method(allow_none=True)
    fake_gpus(monkeypatch, 2)
    with devices.worker_start_method(2) as method:
        assert method == "spawn" == multiprocess.get_start_method()
    assert multiprocess.get_start_method(allow_none=True) == before  # restored
    for num_proc, uses_device in ((1, True), (None, True), (2, False)):
        with devices.worker_start_method(num_proc, uses_device) as method:
            assert method is None and multiprocess.get_start_method(allow_none=True) == before
    fake_gpus(monkeypatch, 0)
    with devices.worker_start_method(2) as method:
        assert method is None and multiprocess.get_start_method(allow_none=True) == before


def sharded_equals_single(teacher_dir, tmp_path):
    single = add_teacher_probs(on_disk(tmp_path / "one"), [teacher(teacher_dir)], batch_size=2, num_proc=1)
    sharded = add_teacher_probs(on_disk(tmp_path / "two"), [teacher(teacher_dir)], batch_size=2, num_proc=2)
    # really two workers: one cache file per shard
    assert sorted(f["filename"][-len("00000_of_00002.arrow") :] for f in sharded.cache_files) == [
        "00000_of_00002.arrow",
        "00001_of_00002.arrow",
    ]
    assert all("_of_" not in f["filename"] for f in single.cache_files)
    assert sharded["tokens"] == single["tokens"] == SENTENCES  # row order kept
    assert sharded["teacher_tags"] == single["teacher_tags"]
    for got, expected in zip(probs_of(sharded), probs_of(single)):
        assert got.shape == expected.shape
        assert np.allclose(got, expected, atol=1e-5)
    assert np.allclose(probs_of(sharded)[0].sum(-1), 1.0, atol=1e-5)
    return sharded


def test_two_processes_equal_one_and_reuse_the_cache(monkeypatch, teacher_dir, tmp_path):
    sharded = sharded_equals_single(teacher_dir, tmp_path)

    def no_model(self, device=None):
        raise AssertionError("the teacher was loaded: the cache was not reused")

    monkeypatch.setattr(TeacherProbabilities, "load", no_model)
    corpus = load_from_disk(str(tmp_path / "two"))
    for num_proc, device in ((2, None), (None, "cpu"), (1, "cuda:1")):  # another rank, another device: same cache
        again = add_teacher_probs(corpus, [teacher(teacher_dir, device=device)], batch_size=2, num_proc=num_proc)
        assert again.cache_files == sharded.cache_files
        assert again._fingerprint == sharded._fingerprint


def test_spawned_workers_load_the_teacher_lazily(monkeypatch, teacher_dir, tmp_path):
    """The start method CUDA needs, on CPU: workers start fresh, unpickle the configuration, load the model."""
    monkeypatch.setattr(devices, "cuda_device_count", lambda: 2)  # in this process only: spawned workers see CPU
    used = []
    original = devices.worker_start_method

    @contextlib.contextmanager
    def recording(num_proc, uses_device=True):
        with original(num_proc, uses_device) as method:
            used.append((num_proc, method, multiprocess.get_start_method(allow_none=True)))
            yield method

    monkeypatch.setattr(devices, "worker_start_method", recording)
    before = multiprocess.get_start_method(allow_none=True)
    sharded_equals_single(teacher_dir, tmp_path)
    assert used[-1] == (2, "spawn", "spawn")  # the 2-process pass ran its pool with spawn
    assert used[0][:2] == (None, None)  # num_proc=1 runs in-process: no pool, nothing changed
    assert multiprocess.get_start_method(allow_none=True) == before


def test_distill_passes_teacher_num_proc(monkeypatch, teacher_dir, tmp_path):
    from tests.tiny_models import build_tiny_xlmr
    from training import distill

    student = build_tiny_xlmr(str(tmp_path / "student"), [" ".join(s) for s in SENTENCES if s], vocab_size=120)
    seen = []

    class Stop(Exception):
        pass

    def add_teacher_probs_spy(dataset, teachers, weights, *, num_proc=None, **kwargs):
        seen.append(num_proc)
        raise Stop

    monkeypatch.setattr(distill, "add_teacher_probs", add_teacher_probs_spy)
    args = [
        "--model_name_or_path",
        student,
        "--teacher",
        teacher_dir,
        "--output_dir",
        str(tmp_path / "out"),
        "--corpus",
        "xner-sample",
        "--eval",
        "xner-sample:train",
        "--max_train_steps",
        "1",
    ]
    for extra, expected in (([], None), (["--teacher_num_proc", "2"], 2)):
        with pytest.raises(Stop):
            distill.main(args + extra)
        assert seen.pop() == expected  # None: add_teacher_probs picks one worker per GPU
    with pytest.raises(SystemExit):
        distill.main(args + ["--teacher_num_proc", "0"])


def launched_distill(marks: str, argv) -> int:
    """Each ``accelerate launch`` process: distill, leaving a mark for every process that loads the teacher."""
    from training import distill

    original = TeacherProbabilities.load

    def load(self, device=None):
        if self._tagger is None:
            open(os.path.join(marks, f"rank{os.environ.get('RANK')}-pid{os.getpid()}"), "w").close()
        return original(self, device)

    TeacherProbabilities.load = load
    return distill.main(argv)


def test_accelerate_launch_computes_the_column_once_with_all_workers(sample, tmp_path):
    """Two distributed processes (gloo on CPU): the main one computes with 2 workers, the other reads the cache."""
    from dataset_builders.schemes import CONLL
    from tests.tiny_models import build_tiny_xlmr

    texts = [" ".join(tokens) for tokens in sample["tokens"]]
    teacher_path = build_tiny_bert(
        str(tmp_path / "teacher"), texts, id2label=dict(enumerate(CONLL.label_names)), seed=1
    )
    student = build_tiny_xlmr(str(tmp_path / "student"), texts, vocab_size=150)
    marks, out = tmp_path / "marks", tmp_path / "out"
    marks.mkdir()
    launcher = os.path.join(os.path.dirname(sys.executable), "accelerate")
    # --multi_gpu with ACCELERATE_USE_CPU: accelerate's way to several CPU processes (its --cpu launches one)
    command = [
        launcher,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "tests.test_sharding",
        str(marks),
        "--model_name_or_path",
        student,
        "--teacher",
        teacher_path,
        "--output_dir",
        str(out),
        "--corpus",
        "xner-sample",
        "--eval",
        "xner-sample:train",
        "--per_device_train_batch_size",
        "4",
        "--max_train_steps",
        "1",
        "--max_length",
        "24",
        "--teacher_num_proc",
        "2",
    ]
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        # CPU processes even on a GPU machine: with one GPU visible, accelerate's barrier sends rank 1 to cuda:1
        "CUDA_VISIBLE_DEVICES": "",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, launch_failure(done.stderr)
    with open(out / "results.json", encoding="utf-8") as f:
        assert json.load(f)["num_processes"] == 2
    loads = sorted(p.name for p in marks.iterdir())
    assert len(loads) == 2 and all(name.startswith("rank0-") for name in loads)  # two workers, all of rank 0


if __name__ == "__main__":  # accelerate launch -m tests.test_sharding MARKS DISTILL_ARGS...
    sys.exit(launched_distill(sys.argv[1], sys.argv[2:]))
