"""training.checkpoints on a toy model: RNG round trip without pickle, legacy checkpoints only with trust,
and a pickle planted under a name xner loads never runs (torch.load weights_only)."""

import json
import os
import pickle
import random

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from dataset_builders.errors import UserError
from training.checkpoints import STATE_FILE, TRUST_FLAG, load_checkpoint, save_checkpoint
from training.loop import LoopState


def toy():
    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(4, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    model(torch.ones(3, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    return accelerator, model


def draws():
    return random.random(), float(np.random.rand()), torch.rand(3).tolist()


def test_rng_step_and_state_come_back_without_any_pickle(tmp_path):
    accelerator, model = toy()
    accelerator.step = 7
    path = save_checkpoint(accelerator, str(tmp_path / "checkpoints" / "step_1"), {"state": {"completed_steps": 1}})
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["step_1"]  # no partial folder left
    assert not [f for f in os.listdir(path) if f.endswith(".pkl")]
    expected, weights = draws(), model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    accelerator.step = 0
    draws()
    saved = load_checkpoint(accelerator, path)
    assert saved["state"] == {"completed_steps": 1} and accelerator.step == 7
    assert draws() == expected and torch.equal(model.weight, weights)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_planted_under_a_loaded_name_cannot_run(tmp_path):
    accelerator, _ = toy()
    path = save_checkpoint(accelerator, str(tmp_path / "step_1"), {"state": {}})
    marker = tmp_path / "pwned"
    with open(os.path.join(path, "scheduler.bin"), "wb") as f:
        pickle.dump(_Payload(str(marker)), f)
    manifest = json.loads(open(os.path.join(path, STATE_FILE)).read())  # the attacker fixes the recorded size too
    manifest["files"]["scheduler.bin"] = os.path.getsize(os.path.join(path, "scheduler.bin"))
    with open(os.path.join(path, STATE_FILE), "w") as f:
        json.dump(manifest, f)
    with pytest.raises(UserError, match="cannot be loaded"):
        load_checkpoint(accelerator, path)
    assert not marker.exists()


def test_legacy_checkpoints_load_only_with_trust(tmp_path):
    accelerator, model = toy()
    state = LoopState(completed_steps=3)
    accelerator.register_for_checkpointing(state)  # how earlier xner versions saved the loop state
    accelerator.save_state(str(tmp_path / "legacy"))
    accelerator._custom_objects.clear()
    with pytest.raises(UserError, match=rf"custom_checkpoint_0\.pkl.*{TRUST_FLAG}"):
        load_checkpoint(accelerator, str(tmp_path / "legacy"))
    restored = LoopState()
    assert load_checkpoint(accelerator, str(tmp_path / "legacy"), trust_pickles=True, legacy_objects=[restored]) is None
    assert restored.completed_steps == 3
