"""Students: a token classifier built from a pretrained encoder, fully fine-tuned or with LoRA.

Wu et al. 2020 start the student from the pretrained multilingual encoder (not from the teacher)
and may freeze its embeddings and lowest layers, which keeps the cross-lingual knowledge stored
there intact while the upper layers adapt to the teacher's signal. A LoRA student (peft,
``TaskType.TOKEN_CLS``) trains low-rank adapters plus the classification head, which must be saved
in full (``modules_to_save``) since it is new. Target modules per architecture
(``LORA_TARGET_MODULES``; the attention projections, as in the LoRA paper):

==================  ==========================  =====================================
model_type          default target modules      wider choice (pass ``target_modules``)
==================  ==========================  =====================================
bert                query, value                query, key, value, dense
roberta             query, value                query, key, value, dense
xlm-roberta         query, value                query, key, value, dense
electra             query, value                query, key, value, dense
deberta-v2          query_proj, value_proj      query_proj, key_proj, value_proj, dense
deberta             in_proj                     in_proj, dense
distilbert          q_lin, v_lin                q_lin, k_lin, v_lin, out_lin
==================  ==========================  =====================================

MiniLM checkpoints are ``bert`` models. Other architectures fall back to peft's own default mapping
and, failing that, to an error asking for ``target_modules``.

A LoRA student is saved as an adapter folder that also holds the student's ``config.json`` (its
label set) and tokenizer, so :func:`load_student` can rebuild the head before loading the adapter
and :func:`merge_adapter` can write a plain model anyone loads with ``AutoModelForTokenClassification``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from peft import (
    AutoPeftModelForTokenClassification,
    LoraConfig,
    PeftModel,
    TaskType,
    get_peft_model,
)
from peft.utils import (
    TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_LORA_TARGET_MODULES,
)
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from dataset_builders.errors import UserError
from training.assets import resolve_model_name
from training.inference import has_trained_labels, labels_of
from training.teacher_probs import check_label_sets

ADAPTER_CONFIG = "adapter_config.json"
LORA_TARGET_MODULES: dict[str, list[str]] = {
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "deberta": ["in_proj"],
    "distilbert": ["q_lin", "v_lin"],
}


@dataclass
class LoraSettings:
    """LoRA hyper-parameters. Adapters need a higher learning rate than full fine-tuning
    (on this machine LoRA at 5e-5 barely learned; 5e-4 to 1e-3 is the usual range)."""

    r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    target_modules: Optional[list[str]] = None  # None: chosen from the model type


def lora_target_modules(model_type: str) -> list[str]:
    """Default LoRA target modules for a transformers ``model_type`` (xner's table, then peft's)."""
    targets = LORA_TARGET_MODULES.get(model_type) or PEFT_LORA_TARGET_MODULES.get(model_type)
    if not targets:
        raise ValueError(
            f"no default LoRA target modules for model_type {model_type!r}; pass target_modules "
            f"(known types: {', '.join(sorted(LORA_TARGET_MODULES))})"
        )
    return list(targets)


def _transformers_model(model: nn.Module) -> PreTrainedModel:
    """The ``*ForTokenClassification`` model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model


def head_module_names(model: PreTrainedModel) -> list[str]:
    """Names of the task-head modules: the model's children with parameters outside its encoder."""
    encoder = model.base_model
    return [
        name for name, child in model.named_children() if child is not encoder and any(True for _ in child.parameters())
    ]


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer layers, found by structure rather than by attribute name.

    It is the first ``ModuleList`` in the encoder holding ``config.num_hidden_layers`` modules:
    ``encoder.layer`` for BERT, MiniLM, XLM-R, ELECTRA and DeBERTa, ``transformer.layer`` for
    DistilBERT.
    """
    inner = _transformers_model(model)
    n_layers = inner.config.num_hidden_layers
    for module in inner.base_model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"no list of {n_layers} layers found in {type(inner.base_model).__name__}")


def freeze(model: nn.Module, *, embeddings: bool = False, lowest_layers: int = 0) -> None:
    """Set ``requires_grad=False`` on the embeddings and/or the lowest ``lowest_layers`` encoder layers.

    Everything inside a frozen part stops training, LoRA adapters placed there included.
    """
    if lowest_layers < 0:
        raise ValueError(f"lowest_layers must be >= 0, got {lowest_layers}")
    parts: list[nn.Module] = []
    if embeddings:
        encoder = _transformers_model(model).base_model
        embedding_module = getattr(encoder, "embeddings", None)
        parts.append(embedding_module if embedding_module is not None else encoder.get_input_embeddings())
    if lowest_layers:
        layers = encoder_layers(model)
        if lowest_layers > len(layers):
            raise ValueError(f"cannot freeze {lowest_layers} layers: the encoder has {len(layers)}")
        parts.extend(layers[:lowest_layers])
    for part in parts:
        for parameter in part.parameters():
            parameter.requires_grad = False


def build_student(
    model_name_or_path: str,
    labels: Sequence[str],
    *,
    lora: Optional[LoraSettings] = None,
    freeze_embeddings: bool = False,
    freeze_layers: int = 0,
    **from_pretrained_kwargs: Any,
) -> nn.Module:
    """A token-classification student over ``labels`` (the teacher's label names, in id order).

    From a bare encoder the head is created with the teacher's label set. From a checkpoint that
    already has a head, its label set must equal the teacher's (a clear error otherwise) and its
    own label order is kept: align teacher columns with :func:`training.teacher_probs.check_label_sets`.
    ``lora``: wrap with peft LoRA (head in ``modules_to_save``); otherwise every weight trains.
    ``from_pretrained_kwargs`` (``revision``, ``dtype``, ...) go to ``from_pretrained``.
    ``model_name_or_path`` may be a short asset name (:func:`training.assets.resolve_model_name`).
    """
    model_name_or_path = resolve_model_name(model_name_or_path)
    config = AutoConfig.from_pretrained(model_name_or_path, revision=from_pretrained_kwargs.get("revision"))
    head = labels_of(config)
    if has_trained_labels(head):
        check_label_sets(labels, head)
        model = AutoModelForTokenClassification.from_pretrained(model_name_or_path, **from_pretrained_kwargs)
    else:
        model = AutoModelForTokenClassification.from_pretrained(
            model_name_or_path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            **from_pretrained_kwargs,
        )
    if lora is not None:
        targets = lora.target_modules or lora_target_modules(model.config.model_type)
        peft_config = LoraConfig(
            task_type=TaskType.TOKEN_CLS,
            r=lora.r,
            lora_alpha=lora.lora_alpha,
            lora_dropout=lora.lora_dropout,
            target_modules=targets,
            modules_to_save=head_module_names(model),
        )
        model = get_peft_model(model, peft_config)
    freeze(model, embeddings=freeze_embeddings, lowest_layers=freeze_layers)
    return model


def is_adapter(path: str) -> bool:
    """Whether ``path`` is a saved peft adapter folder (rather than a full model)."""
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def save_student(model: nn.Module, output_dir: str, tokenizer=None) -> str:
    """Save a full or LoRA student (adapter + head + ``config.json`` with the label set) and its tokenizer.

    An adapter's ``config.json`` names the task architecture (``BertForTokenClassification``, not the
    encoder's ``BertModel`` it inherited), so the head it describes is the one that was trained.
    Publishing (``model_cards.publish``) makes the folder portable: base model named by its Hub id.
    """
    model.save_pretrained(output_dir)
    if isinstance(model, PeftModel):
        base = model.get_base_model()
        base.config.architectures = [type(base).__name__]
        base.config.save_pretrained(output_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(output_dir)
    return output_dir


def load_student(path: str, **kwargs: Any) -> nn.Module:
    """Load a saved student for inference: a plain model, or base model + adapter through peft.

    For an adapter the base model is rebuilt with the student's label set (read from the
    ``config.json`` :func:`save_student` writes), so the saved head fits.
    """
    if not is_adapter(path):
        return AutoModelForTokenClassification.from_pretrained(path, **kwargs)
    config_file = os.path.join(path, "config.json")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{path} holds an adapter but no config.json with its labels (use save_student)")
    with open(config_file, encoding="utf-8") as f:
        id2label = {int(i): label for i, label in json.load(f)["id2label"].items()}
    return AutoPeftModelForTokenClassification.from_pretrained(
        path,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={label: i for i, label in id2label.items()},
        **kwargs,
    )


def merge_adapter(adapter_dir: str, output_dir: str) -> str:
    """Merge a LoRA adapter into its base model and save a plain model (config with id2label + tokenizer).

    The tokenizer is the adapter folder's when it has one, else the base model's.
    """
    if not is_adapter(adapter_dir):
        raise UserError(f"{adapter_dir} is not an adapter folder (no {ADAPTER_CONFIG})")
    model = load_student(adapter_dir).merge_and_unload()
    model.save_pretrained(output_dir)
    if os.path.isfile(os.path.join(adapter_dir, "tokenizer_config.json")):
        tokenizer_source = adapter_dir
    else:
        with open(os.path.join(adapter_dir, ADAPTER_CONFIG), encoding="utf-8") as f:
            tokenizer_source = json.load(f)["base_model_name_or_path"]
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(output_dir)
    return output_dir


__all__ = [
    "LORA_TARGET_MODULES",
    "LoraSettings",
    "build_student",
    "encoder_layers",
    "freeze",
    "head_module_names",
    "is_adapter",
    "load_student",
    "lora_target_modules",
    "merge_adapter",
    "save_student",
]
