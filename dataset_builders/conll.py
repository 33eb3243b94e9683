"""A CoNLL-style NER reader as a ``datasets`` builder.

Modelled on datasets' packaged ``conll`` builder (a small ArrowBasedBuilder with a config
dataclass), specialised for NER: one token column and one tag column are kept, the tags become
a ``ClassLabel`` sequence over the corpus' IOB2 label names, IOB1 files are converted on the
fly, and a malformed line stops the build with an error naming its file and line. Sentences are
written in chunks, so a file of millions of sentences is never held in memory at once.
"""

from __future__ import annotations

import codecs
import logging
import os
from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import datasets
import pyarrow as pa
from datasets.builder import Key

from dataset_builders.errors import UserError
from dataset_builders.schemes import TagSequenceError, iob1_to_iob2, split_tag, validate_iob2

logger = logging.getLogger(__name__)


class ConllFormatError(UserError):
    """A CoNLL file that cannot be read; the message names the file and line."""


@dataclass
class ConllNerConfig(datasets.BuilderConfig):
    """How to read one CoNLL-style NER corpus.

    Args:
        label_names: the ClassLabel names of ``ner_tags`` (IOB2, e.g. ``LabelScheme.label_names``).
        token_column / tag_column: 0-based column indices (negative counts from the end).
        separator: column separator; ``None`` splits on any run of whitespace. Give ``" "`` or
            ``"\\t"`` where tokens may be empty or contain other whitespace.
        num_columns: expected number of columns; ``None`` takes the count of the first token
            line of each file. Trailing empty fields (a stray separator at the end) are ignored.
        comment_prefix: lines starting with it are skipped (GermEval's ``#`` lines).
        docstart: lines starting with it are document markers: skipped, and they end a sentence.
        tag_scheme: ``"iob2"`` or ``"iob1"`` (converted to IOB2).
        on_invalid: ``"raise"`` on a tag sequence that is not IOB2, or ``"repair"`` it.
        sentences_per_table: sentences per Arrow table written (memory bound).
    """

    label_names: Optional[Sequence[str]] = None
    token_column: int = 0
    tag_column: int = -1
    separator: Optional[str] = None
    num_columns: Optional[int] = None
    comment_prefix: Optional[str] = None
    docstart: Optional[str] = "-DOCSTART-"
    tag_scheme: str = "iob2"
    on_invalid: str = "raise"
    encoding: str = "utf-8"
    sentences_per_table: int = 10_000

    def __post_init__(self):
        super().__post_init__()
        if self.tag_scheme not in ("iob1", "iob2"):
            raise ValueError(f"tag_scheme must be 'iob1' or 'iob2', got {self.tag_scheme!r}")
        if self.on_invalid not in ("raise", "repair"):
            raise ValueError(f"on_invalid must be 'raise' or 'repair', got {self.on_invalid!r}")
        if self.label_names is not None:
            self.label_names = list(self.label_names)


class ConllNer(datasets.ArrowBasedBuilder):
    BUILDER_CONFIG_CLASS = ConllNerConfig

    def _info(self):
        if not self.config.label_names:
            raise ValueError("ConllNerConfig.label_names is required (use read_conll to infer it from the files)")
        return datasets.DatasetInfo(
            features=datasets.Features(
                {
                    "tokens": datasets.List(datasets.Value("string")),
                    "ner_tags": datasets.List(datasets.ClassLabel(names=list(self.config.label_names))),
                }
            )
        )

    def _split_generators(self, dl_manager):
        if not self.config.data_files:
            raise ValueError("at least one data file must be given")
        files = dl_manager.download(self.config.data_files)
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"files": list(paths)}) for split, paths in files.items()
        ]

    def _generate_shards(self, files):
        yield from files

    def _generate_tables(self, files) -> Iterator[tuple[Key, pa.Table]]:
        label_ids = {name: i for i, name in enumerate(self.config.label_names)}
        schema = self.info.features.arrow_schema
        for shard_idx, path in enumerate(files):
            tokens: list[list[str]] = []
            tags: list[list[int]] = []
            batch_idx = 0
            repaired = 0
            for sent_tokens, sent_tags, line_no in iter_sentences(path, self.config):
                ids, was_repaired = _encode(sent_tags, label_ids, self.config, path, line_no)
                tags.append(ids)
                repaired += was_repaired
                tokens.append(sent_tokens)
                if len(tokens) >= self.config.sentences_per_table:
                    yield Key(shard_idx, batch_idx), pa.table({"tokens": tokens, "ner_tags": tags}, schema=schema)
                    tokens, tags, batch_idx = [], [], batch_idx + 1
            if tokens:
                yield Key(shard_idx, batch_idx), pa.table({"tokens": tokens, "ner_tags": tags}, schema=schema)
            elif batch_idx == 0:
                raise ConllFormatError(f"{path}: the file holds no sentence")
            if repaired:
                logger.warning("%s: repaired %d sentence(s) with an I- tag that continued no entity", path, repaired)


def _encode(
    tags: list[str], label_ids: dict, config: ConllNerConfig, path: str, line_no: int
) -> tuple[list[int], bool]:
    """Tag strings of one sentence -> (IOB2 label ids, whether it was repaired); ``line_no`` is its first line."""
    try:
        if config.tag_scheme == "iob1":
            tags = iob1_to_iob2(tags)
        original = tags
        tags = validate_iob2(tags, repair=config.on_invalid == "repair")
    except TagSequenceError as err:
        raise ConllFormatError(f"{path}:{line_no}: sentence starting here: {err}") from None
    try:
        return [label_ids[t] for t in tags], tags != original
    except KeyError as err:
        offset = tags.index(err.args[0])
        raise ConllFormatError(
            f"{path}:{line_no + offset}: unknown tag {err.args[0]!r}; the corpus' labels are {list(label_ids)}"
        ) from None


def _decoding_error(path: str, encoding: str, read_as: str, err: UnicodeDecodeError) -> ConllFormatError:
    """Name the line and byte of the first undecodable byte (the file is re-read only on this path)."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        data.decode(read_as)
    except UnicodeDecodeError as found:
        err = found
    line = data.count(b"\n", 0, err.start) + 1
    bad = data[err.start : err.start + 1].hex()
    return ConllFormatError(
        f"{path}:{line}: not valid {encoding.upper()} text (byte 0x{bad} at offset {err.start}); "
        f"is it a binary file, or pass encoding= with the file's encoding"
    )


def _read_lines(path: str, encoding: str) -> Iterator[str]:
    """The file's lines; a UTF-8 byte order mark is dropped, an undecodable byte is an error naming its line."""
    # "utf-8-sig" drops a leading BOM, which would otherwise stick to the first token and hide a
    # leading -DOCSTART-; it reads BOM-less UTF-8 unchanged.
    read_as = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        handle = open(path, encoding=read_as)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    with handle:
        try:
            yield from handle
        except UnicodeDecodeError as err:
            raise _decoding_error(path, encoding, read_as, err) from None


def iter_sentences(path: str, config: ConllNerConfig) -> Iterator[tuple[list[str], list[str], int]]:
    """Yield ``(tokens, tags, first_line_number)`` per sentence of a CoNLL file, checking columns."""
    expected = config.num_columns
    sep = config.separator
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for line_no, raw in enumerate(_read_lines(path, config.encoding), start=1):
        line = raw.rstrip("\r\n")
        is_docstart = config.docstart is not None and line.startswith(config.docstart)
        if not line.strip() or is_docstart:
            if tokens:
                yield tokens, tags, start
                tokens, tags = [], []
            continue
        if config.comment_prefix is not None and line.startswith(config.comment_prefix):
            continue
        fields = line.split(sep)
        while len(fields) > 1 and fields[-1] == "" and (expected is None or len(fields) > expected):
            fields.pop()  # a stray separator at the end of the line (GermEval's test file has one)
        if expected is None:
            expected = len(fields)
        if len(fields) != expected:
            raise ConllFormatError(f"{path}:{line_no}: expected {expected} columns, found {len(fields)}: {line!r}")
        try:
            # a tag never holds whitespace: "B-PER " (tab-separated files) is B-PER, not a new label
            token, tag = fields[config.token_column], fields[config.tag_column].strip()
        except IndexError:
            raise ConllFormatError(
                f"{path}:{line_no}: no column {config.token_column} or {config.tag_column} in {line!r}"
            ) from None
        try:
            split_tag(tag)
        except TagSequenceError as err:
            raise ConllFormatError(f"{path}:{line_no}: {err}") from None
        if not tokens:
            start = line_no
        tokens.append(token)
        tags.append(tag)
    if tokens:
        yield tokens, tags, start


def scan_label_names(paths: Sequence[str], config: ConllNerConfig) -> list[str]:
    """The IOB2 label names used in ``paths``: O first, then B-/I- per type in order of appearance."""
    types: list[str] = []
    for path in paths:
        for _, tags, _ in iter_sentences(path, config):
            for tag in tags:
                label = split_tag(tag)[1]
                if label is not None and label not in types:
                    types.append(label)
    names = ["O"]
    for t in types:
        names += [f"B-{t}", f"I-{t}"]
    return names


def read_conll(
    data_files: dict[str, str | list[str]] | str | list[str],
    label_names: Optional[Sequence[str]] = None,
    cache_dir: Optional[str] = None,
    **config_kwargs,
) -> datasets.DatasetDict:
    """Read CoNLL-style files into a ``DatasetDict`` (``tokens``, ``ner_tags``), through the datasets cache.

    ``data_files`` maps split names to paths (a single path or list becomes the ``train`` split).
    Without ``label_names`` the files are scanned once for the tags they use.
    """
    if isinstance(data_files, (str, os.PathLike)):
        data_files = {"train": [str(data_files)]}
    elif isinstance(data_files, (list, tuple)):
        data_files = {"train": [str(p) for p in data_files]}
    else:
        data_files = {
            split: [str(p)] if isinstance(p, (str, os.PathLike)) else [str(q) for q in p]
            for split, p in data_files.items()
        }
    for split, paths in data_files.items():
        for p in paths:
            if not os.path.isfile(p):
                raise FileNotFoundError(f"{p}: no such file (split {split!r})")
    data_files = {split: [os.path.abspath(p) for p in paths] for split, paths in data_files.items()}
    if label_names is None:
        probe = ConllNerConfig(name="probe", **config_kwargs)
        label_names = scan_label_names([p for paths in data_files.values() for p in paths], probe)
    builder = ConllNer(cache_dir=cache_dir, data_files=data_files, label_names=list(label_names), **config_kwargs)
    try:
        builder.download_and_prepare()
    except datasets.exceptions.DatasetGenerationError as err:
        # datasets wraps the reader's error; the user needs the file and line, not the wrapper.
        if isinstance(err.__cause__, (UserError, FileNotFoundError)):
            raise err.__cause__ from None
        raise
    return builder.as_dataset()
