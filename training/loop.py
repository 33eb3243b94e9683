"""The training engine shared by teachers and students, under Accelerate.

:func:`train` runs any model on any dataloader with a ``loss_fn(model_outputs, batch) -> loss``:
gradient accumulation through ``accelerator.accumulate``, an AdamW optimizer and a transformers
scheduler, evaluation at every epoch end (the callback gathers with ``gather_for_metrics``), the
best model by a dev metric saved with ``save_pretrained``, and checkpoints every
``checkpointing_steps`` (:mod:`training.checkpoints`: complete or absent, no pickle loaded) that a
later run resumes *exactly*: model, optimizer, scheduler, RNG states and the batch sampler come
back, the batches already seen in the interrupted epoch are skipped with ``skip_first_batches``,
and on CPU the final weights equal an uninterrupted run's.

Why the pieces are where they are:

* Checkpoints are taken only right after an optimizer step (or at an epoch end), so "batches
  seen in this epoch" is a multiple of the accumulation steps and accelerate's own step counter,
  restored with the checkpoint, agrees with it.
* Nothing outside the training step may draw from the global RNG, or a resumed run's dropout
  masks drift from the uninterrupted run's: dataloaders carry their own generators
  (:func:`training.collate.build_dataloader`) and evaluation runs inside ``fork_rng``.
* A non-finite loss stops the run before ``backward``; every process sees the same verdict (the
  loss is gathered), no checkpoint is written after it, and the error names the step and the
  last good checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from dataset_builders.errors import UserError
from training.checkpoints import load_checkpoint, resolve_checkpoint, save_checkpoint
from training.collate import TokenCollator, build_dataloader
from training.inference import MODEL_INPUT_NAMES, predict_word_probabilities, tags_of
from training.metrics import entity_scores, load_metric

logger = logging.getLogger(__name__)

LossFn = Callable[[Any, Mapping[str, torch.Tensor]], torch.Tensor]
EvaluateFn = Callable[[torch.nn.Module], dict]


class NonFiniteLossError(UserError, RuntimeError):
    """The training loss became NaN or infinite; the run stopped without updating the model.

    A user error (a learning rate too high, fp16 overflow): reported in one line by the commands."""

    def __init__(self, loss: float, step: int, epoch: int, batch: int, last_checkpoint: Optional[str]):
        self.loss, self.step, self.epoch, self.batch, self.last_checkpoint = loss, step, epoch, batch, last_checkpoint
        where = f"resume from {last_checkpoint}" if last_checkpoint else "no checkpoint had been saved yet"
        super().__init__(
            f"non-finite training loss ({loss}) at step {step} (epoch {epoch}, batch {batch} of the epoch); "
            f"training stopped before that update; last good checkpoint: {where}. Common causes: a learning "
            f"rate too high, fp16 overflow (try --mixed_precision bf16 or no), or a loss_fn dividing by zero."
        )


@dataclass
class LoopConfig:
    """Optimisation, checkpointing and tracking settings (``run_ner_no_trainer.py``'s vocabulary).

    ``checkpointing_steps``: None (no checkpoints), ``"epoch"``, or every N optimizer steps (an
    int or a digit string). ``resume_from_checkpoint``: a checkpoint folder, or ``"latest"`` for
    the latest complete one under ``output_dir/checkpoints``; ``trust_checkpoint_pickles`` lets it
    hold pickles xner did not write (:mod:`training.checkpoints`). ``best_split``/``metric_for_best``:
    the evaluation entry that selects the model saved in ``model_dir`` (default ``output_dir``;
    higher is better).
    """

    output_dir: str
    num_train_epochs: int = 3
    max_train_steps: Optional[int] = None
    gradient_accumulation_steps: int = 1
    learning_rate: float = 5e-5
    head_learning_rate: Optional[float] = None  # the classifier head's (default: learning_rate)
    weight_decay: float = 0.0
    lr_scheduler_type: str = "linear"
    num_warmup_steps: int = 0
    max_grad_norm: Optional[float] = 1.0
    checkpointing_steps: Optional[Union[int, str]] = None
    resume_from_checkpoint: Optional[str] = None
    with_tracking: bool = False
    report_to: str = "all"
    project_name: str = "xner"
    mixed_precision: Optional[str] = None
    best_split: str = "validation"
    metric_for_best: str = "f1"
    trust_checkpoint_pickles: bool = False
    model_dir: Optional[str] = None

    def __post_init__(self):
        steps = self.checkpointing_steps
        if isinstance(steps, str) and steps.isdigit():
            self.checkpointing_steps = steps = int(steps)
        if not (steps is None or steps == "epoch" or (isinstance(steps, int) and steps > 0)):
            raise UserError(f"--checkpointing_steps must be 'epoch' or a positive number of steps, got {steps!r}")
        for name in ("gradient_accumulation_steps", "num_train_epochs"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.max_train_steps is not None and self.max_train_steps < 1:
            raise UserError(f"--max_train_steps must be >= 1, got {self.max_train_steps}")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise UserError(f"--learning_rate must be a finite number > 0, got {self.learning_rate}")
        self.model_dir = self.model_dir or self.output_dir


@dataclass
class LoopState:
    """Progress saved in every checkpoint (``register_for_checkpointing``) and returned by :func:`train`."""

    completed_steps: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_metric: Optional[float] = None
    best_epoch: Optional[int] = None
    best_step: Optional[int] = None
    history: list = field(default_factory=list)
    train_tokens: int = 0
    padded_tokens: int = 0
    train_seconds: float = 0.0
    last_checkpoint: Optional[str] = None

    def state_dict(self) -> dict:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(state) - known)
        if unknown:
            raise UserError(f"checkpoint state has unknown field(s) {unknown}")
        for name, value in state.items():
            setattr(self, name, value)

    @property
    def tokens_per_second(self) -> float:
        """Real (non-padding) training tokens per second of training time, evaluation excluded."""
        return self.train_tokens / self.train_seconds if self.train_seconds else 0.0

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.train_tokens / self.padded_tokens if self.padded_tokens else 0.0


def make_accelerator(config: LoopConfig) -> Accelerator:
    """The Accelerator for a run: accumulation steps, mixed precision and trackers from ``config``."""
    return Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with=config.report_to if config.with_tracking else None,
        project_dir=config.output_dir,
    )


def is_head_parameter(name: str) -> bool:
    """Whether a parameter belongs to the token-classification head (``classifier``, also inside a peft
    wrapper's ``modules_to_save``)."""
    return "classifier" in name.split(".")


def default_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """AdamW over trainable parameters; biases and norm weights (1-d tensors) get no weight decay.

    ``config.head_learning_rate``: the freshly initialised classifier head's own rate. A distilled
    student learns from soft or pseudo labels whose gradients are far weaker than gold labels', and
    at an encoder's rate its new head can stay at the label prior for hundreds of steps (see README,
    "Multilingual encoder"); the scheduler scales both rates alike.

    The fused kernel is used where it exists (CPU, CUDA): on CPU the per-tensor default spends
    about 5x longer per step, which with MiniLM's 12M-parameter embedding matrix is a third of the step.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameter")
    head_lr = config.head_learning_rate or config.learning_rate
    groups = []
    for head, lr in ((False, config.learning_rate), (True, head_lr)):
        part = [p for n, p in named if is_head_parameter(n) == head]
        groups.append({"params": [p for p in part if p.ndim >= 2], "weight_decay": config.weight_decay, "lr": lr})
        groups.append({"params": [p for p in part if p.ndim < 2], "weight_decay": 0.0, "lr": lr})
    fused = all(p.device.type in ("cpu", "cuda") for _, p in named)
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.learning_rate, fused=fused)


def save_pretrained_model(accelerator: Accelerator, model: torch.nn.Module, directory: str, tokenizer=None) -> None:
    """``save_pretrained`` of the unwrapped model (config with id2label/label2id) and of the tokenizer."""
    accelerator.wait_for_everyone()
    accelerator.unwrap_model(model).save_pretrained(directory, is_main_process=accelerator.is_main_process)
    if tokenizer is not None and accelerator.is_main_process:
        tokenizer.save_pretrained(directory)


def _trackable(hparams: Mapping[str, Any]) -> dict:
    """Tracker configs take scalars only."""
    return {k: v for k, v in hparams.items() if isinstance(v, (int, float, str, bool))}


def train(
    model: torch.nn.Module,
    train_dataloader: DataLoader,
    loss_fn: LossFn,
    config: LoopConfig,
    accelerator: Accelerator,
    *,
    evaluate: Optional[EvaluateFn] = None,
    tokenizer=None,
    optimizer: Optional[torch.optim.Optimizer] = None,
    model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
    hparams: Optional[Mapping[str, Any]] = None,
) -> LoopState:
    """Train ``model``; returns the final :class:`LoopState` (history of evaluations, throughput).

    Seed the RNGs (``accelerate.utils.set_seed``) before building the model. ``train_dataloader``
    is the unprepared DataLoader (a :class:`~training.collate.LengthGroupedBatchSampler` in it is
    re-seeded every epoch and checkpointed). The model is called with the ``model_input_names``
    present in the batch; ``loss_fn`` sees its outputs and the whole batch. ``evaluate(model)``
    returns ``{split: {metric: value}}`` and runs at every epoch end; the model scoring best on
    ``config.best_split`` is saved in ``config.output_dir`` (the final model when there is no
    such split).
    """
    state = LoopState()
    sampler = train_dataloader.batch_sampler
    train_dl = accelerator.prepare(train_dataloader)
    steps_per_epoch = math.ceil(len(train_dl) / config.gradient_accumulation_steps)
    max_steps = config.max_train_steps or config.num_train_epochs * steps_per_epoch
    num_epochs = math.ceil(max_steps / steps_per_epoch)
    optimizer = optimizer or default_optimizer(model, config)
    # A prepared scheduler steps once per process at every optimizer step.
    scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer=optimizer,
        num_warmup_steps=config.num_warmup_steps * accelerator.num_processes,
        num_training_steps=max_steps * accelerator.num_processes,
    )
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    if config.resume_from_checkpoint:
        path = resolve_checkpoint(config.resume_from_checkpoint, config.output_dir)
        accelerator.print(f"resuming from {path}")
        resume(accelerator, path, state, sampler, config.trust_checkpoint_pickles)
    if config.with_tracking:
        accelerator.init_trackers(config.project_name, _trackable({**dataclasses.asdict(config), **(hparams or {})}))

    run = _Run(
        model,
        train_dl,
        sampler,
        optimizer,
        scheduler,
        loss_fn,
        config,
        accelerator,
        state,
        evaluate,
        tokenizer,
        tuple(model_input_names),
        max_steps,
    )
    try:
        run.epochs(num_epochs)
    finally:
        run.progress.close()
        if config.with_tracking:
            accelerator.end_training()
    if state.best_metric is None:
        save_pretrained_model(accelerator, model, config.model_dir, tokenizer)
    return state


def resume(accelerator: Accelerator, path: str, state: LoopState, sampler, trust_pickles: bool = False) -> None:
    """Restore a run from checkpoint ``path``: accelerate's objects, then the loop state and sampler position."""
    has_state = hasattr(sampler, "state_dict")
    # Checkpoints of earlier versions kept these two as accelerate custom objects (pickles): only with trust.
    legacy = [state, sampler] if has_state else [state]
    saved = load_checkpoint(accelerator, path, trust_pickles=trust_pickles, legacy_objects=legacy)
    if saved is None:
        return
    try:
        state.load_state_dict(saved["state"])
        if has_state:
            sampler.load_state_dict(saved["sampler"])
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"--resume_from_checkpoint {path}: damaged state in its xner_state.json ({err})") from None


@dataclass
class _Run:
    """The mutable pieces of one :func:`train` call and its per-epoch/per-step logic."""

    model: torch.nn.Module
    train_dl: DataLoader
    sampler: Any
    optimizer: Any
    scheduler: Any
    loss_fn: LossFn
    config: LoopConfig
    accelerator: Accelerator
    state: LoopState
    evaluate: Optional[EvaluateFn]
    tokenizer: Any
    model_input_names: tuple
    max_steps: int
    tokens: int = 0
    padded: int = 0
    step_losses: list = field(default_factory=list)

    def __post_init__(self):
        self.progress = tqdm(
            total=self.max_steps,
            initial=self.state.completed_steps,
            desc="training",
            disable=not self.accelerator.is_local_main_process,
        )

    def epochs(self, num_epochs: int) -> None:
        state = self.state
        for epoch in range(state.epoch, num_epochs):
            if state.completed_steps >= self.max_steps:
                break
            if hasattr(self.sampler, "set_epoch"):
                self.sampler.set_epoch(epoch)
            self.train_dl.set_epoch(epoch)
            state.epoch = epoch
            skip = state.batches_in_epoch
            batches = self.accelerator.skip_first_batches(self.train_dl, skip) if skip else self.train_dl
            self.model.train()
            started = time.perf_counter()
            for batch in batches:
                self.step(batch, epoch)
                if self.accelerator.sync_gradients:
                    state.completed_steps += 1
                    self.progress.update(1)
                    if self._checkpoint_due():
                        state.train_seconds += time.perf_counter() - started
                        self.save_checkpoint(f"step_{state.completed_steps}")
                        started = time.perf_counter()
                    if state.completed_steps >= self.max_steps:
                        break
            state.train_seconds += time.perf_counter() - started
            state.epoch, state.batches_in_epoch = epoch + 1, 0
            self._count_tokens()
            self.end_of_epoch(epoch)
            if self.config.checkpointing_steps == "epoch":
                self.save_checkpoint(f"epoch_{epoch}")

    def step(self, batch: Mapping[str, torch.Tensor], epoch: int) -> None:
        accelerator, state = self.accelerator, self.state
        with accelerator.accumulate(self.model):
            outputs = self.model(**{k: batch[k] for k in self.model_input_names if k in batch})
            loss = self.loss_fn(outputs, batch)
            losses = accelerator.gather(loss.detach().float().reshape(1))
            if not torch.isfinite(losses).all():
                bad = losses[~torch.isfinite(losses)][0].item()
                raise NonFiniteLossError(
                    bad, state.completed_steps + 1, epoch, state.batches_in_epoch + 1, state.last_checkpoint
                )
            accelerator.backward(loss)
            if accelerator.sync_gradients and self.config.max_grad_norm:
                accelerator.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
        state.batches_in_epoch += 1
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        self.padded += batch["input_ids"].numel()
        if self.config.with_tracking:
            self.step_losses.append(losses.mean().item())
            if accelerator.sync_gradients:
                loss_value = sum(self.step_losses) / len(self.step_losses)  # mean over the accumulated micro-batches
                accelerator.log(
                    {"train_loss": loss_value, "lr": self.scheduler.get_last_lr()[0]}, step=state.completed_steps + 1
                )
                self.step_losses.clear()

    def _checkpoint_due(self) -> bool:
        every = self.config.checkpointing_steps
        return isinstance(every, int) and self.state.completed_steps % every == 0

    def _count_tokens(self) -> None:
        """Fold every process' token counts into the state (a collective: call it on all processes)."""
        counts = self.accelerator.reduce(
            torch.tensor([self.tokens, self.padded], device=self.accelerator.device), "sum"
        )
        self.state.train_tokens += int(counts[0])
        self.state.padded_tokens += int(counts[1])
        self.tokens = self.padded = 0

    def save_checkpoint(self, name: str) -> None:
        self._count_tokens()
        path = os.path.join(self.config.output_dir, "checkpoints", name)
        previous, self.state.last_checkpoint = self.state.last_checkpoint, path  # the saved state names itself
        saved = {"state": self.state.state_dict()}
        if hasattr(self.sampler, "state_dict"):
            saved["sampler"] = self.sampler.state_dict()
        try:
            save_checkpoint(self.accelerator, path, saved)
        except OSError as err:  # a full disk: the partial folder is never taken for a checkpoint
            self.state.last_checkpoint = previous
            raise OSError(
                err.errno,
                f"writing checkpoint {path} failed ({err.strerror or err}); last complete "
                f"checkpoint: {previous or 'none'}",
            ) from err

    def end_of_epoch(self, epoch: int) -> None:
        if self.evaluate is None:
            return
        state, config = self.state, self.config
        with torch.random.fork_rng(devices=[]):
            metrics = self.evaluate(self.model)
        self.model.train()
        state.history.append({"epoch": epoch, "step": state.completed_steps, **metrics})
        summary = {
            f"{split}_{k}": v for split, m in metrics.items() for k, v in m.items() if isinstance(v, (int, float))
        }
        if self.accelerator.is_local_main_process:
            self.progress.write(f"epoch {epoch} step {state.completed_steps}: " + json.dumps(summary))
        if config.with_tracking:
            self.accelerator.log({**summary, "epoch": epoch}, step=state.completed_steps)
        score = metrics.get(config.best_split, {}).get(config.metric_for_best)
        if score is not None and (state.best_metric is None or score > state.best_metric):
            state.best_metric, state.best_epoch, state.best_step = float(score), epoch, state.completed_steps
            save_pretrained_model(self.accelerator, self.model, config.model_dir, self.tokenizer)


@dataclass
class EvalSet:
    """One evaluation split: its features (from :class:`~training.features.TokenAligner`) and gold word tags.

    ``map_predictions``: applied to the predicted word tags before scoring (an explicit type mapping
    between the model's and the test set's label sets, :mod:`training.evaluation`).
    """

    features: Any
    references: list[list[str]]
    map_predictions: Optional[Callable[[list[list[str]]], list[list[str]]]] = None


class NerEvaluator:
    """Entity-level P/R/F1 (xner's seqeval metric) of a token classifier on several splits.

    Called as ``evaluator(model) -> {split: scores}`` (:func:`training.metrics.scores_of`: the one
    result schema), the ``evaluate`` callback of :func:`train`. Words are tagged by xner's one
    inference core (:func:`training.inference.predict_word_probabilities`, gathered with
    ``gather_for_metrics``). Eval batches are sorted by length (little padding); order does not
    matter since rows carry their sentence ids.
    """

    def __init__(
        self,
        accelerator: Accelerator,
        sets: Mapping[str, EvalSet],
        id2label: Mapping[int, str],
        batch_size: int,
        collator: TokenCollator,
        model_input_names: Sequence[str] = MODEL_INPUT_NAMES,
    ):
        self.accelerator = accelerator
        self.sets = dict(sets)
        self.id2label = {int(k): v for k, v in id2label.items()}
        self.labels = [self.id2label[i] for i in range(len(self.id2label))]
        self.outside_id = next((i for i, name in self.id2label.items() if name == "O"), 0)
        self.model_input_names = tuple(model_input_names)
        self.dataloaders = {
            split: accelerator.prepare(build_dataloader(s.features, batch_size, collator, shuffle=False))
            for split, s in self.sets.items()
        }
        self.metric = load_metric()

    def predict(self, model: torch.nn.Module, split: str) -> list[list[str]]:
        """The word tags of one split (its ``map_predictions`` applied), the same on every process."""
        eval_set = self.sets[split]
        num_words = [len(tags) for tags in eval_set.references]
        probabilities = predict_word_probabilities(
            model,
            self.dataloaders[split],
            self.accelerator,
            num_words,
            outside_id=self.outside_id,
            model_input_names=self.model_input_names,
        )
        tags = tags_of(probabilities, self.labels)
        return eval_set.map_predictions(tags) if eval_set.map_predictions else tags

    def score(self, predictions: list[list[str]], split: str) -> dict:
        return entity_scores(predictions, self.sets[split].references, self.metric)

    def __call__(self, model: torch.nn.Module) -> dict[str, dict]:
        return {split: self.score(self.predict(model, split), split) for split in self.sets}


__all__ = [
    "EvalSet",
    "LoopConfig",
    "LoopState",
    "MODEL_INPUT_NAMES",
    "NerEvaluator",
    "NonFiniteLossError",
    "default_optimizer",
    "is_head_parameter",
    "make_accelerator",
    "resolve_checkpoint",
    "resume",
    "save_pretrained_model",
    "train",
]
