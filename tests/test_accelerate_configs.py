"""The accelerate config templates in configs/accelerate load with accelerate's own loader, and the
GPU experiment config launches through one of them."""

import pathlib

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import launch_command_parser
from accelerate.utils import DistributedType

from xner.experiments.config import load_experiment

REPO = pathlib.Path(__file__).resolve().parent.parent
TEMPLATES = REPO / "configs" / "accelerate"


@pytest.mark.parametrize("name, machines, processes", [("one-node", 1, 8), ("multi-node", 2, 16)])
def test_templates_load_with_accelerates_loader(name, machines, processes):
    path = TEMPLATES / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    assert set(raw) <= set(ClusterConfig.__dataclass_fields__)  # no key accelerate would reject or ignore
    config = load_config_from_file(str(path))
    assert isinstance(config, ClusterConfig)
    assert config.distributed_type == DistributedType.MULTI_GPU and not config.use_cpu
    assert (config.num_machines, config.num_processes) == (machines, processes)
    assert config.num_processes % config.num_machines == 0  # the same number of GPUs on each machine
    if machines > 1:
        assert config.main_process_ip and config.main_process_port and config.rdzv_backend in ("static", "c10d")


def test_gpu_experiment_launches_through_a_template(monkeypatch):
    monkeypatch.chdir(REPO)  # the launcher's path is relative to the repository root
    experiment = load_experiment(str(REPO / "configs" / "paper-gpu.yaml"))
    assert experiment.launcher[:2] == ["accelerate", "launch"] and experiment.launcher[-1] == "-m"
    args = launch_command_parser().parse_args([*experiment.launcher[2:], "training.teacher"])
    assert args.module and args.training_script == "training.teacher"
    assert pathlib.Path(args.config_file).resolve().parent == TEMPLATES
    assert load_config_from_file(args.config_file).num_processes == 8
