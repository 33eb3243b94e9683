"""Known NER corpora: where their files live, how to read them, and their label schemes.

``load_corpus(name, data_dir=..., lang=...)`` returns a ``DatasetDict`` with IOB2 ``ner_tags``
whatever the file's own scheme. ``data_dir`` may be the folder that holds the corpus folder
(e.g. ``../shared/data``) or the corpus folder itself; file names are the originals'.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

import datasets

from dataset_builders.conll import read_conll
from dataset_builders.schemes import CONLL, GERMEVAL, MASAKHANER, WIKIANN, LabelScheme

logger = logging.getLogger(__name__)

MASAKHANER2_LANGUAGES = (
    "bam",
    "bbj",
    "ewe",
    "fon",
    "hau",
    "ibo",
    "kin",
    "lug",
    "luo",
    "mos",
    "nya",
    "pcm",
    "sna",
    "swa",
    "tsn",
    "twi",
    "wol",
    "xho",
    "yor",
    "zul",
)


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus: its languages, splits -> file path templates (``{lang}`` filled in), reader settings."""

    name: str
    languages: tuple[str, ...]
    scheme: LabelScheme
    folder: str
    files: dict[str, str]
    reader: dict = field(default_factory=dict)
    license: str = ""
    citation: str = ""
    homepage: str = ""
    domain: str = ""
    builtin_dir: str = ""  # where the files ship inside the package, for built-in corpora

    def paths(self, data_dir: str, lang: str) -> dict[str, str]:
        """Split -> path, looking in ``data_dir/<folder>`` first, then in ``data_dir`` itself."""
        base = os.path.join(data_dir, self.folder)
        if not os.path.isdir(base):
            base = data_dir
        return {split: os.path.join(base, template.format(lang=lang)) for split, template in self.files.items()}


CORPORA: dict[str, CorpusSpec] = {
    spec.name: spec
    for spec in (
        CorpusSpec(
            name="conll2003",
            languages=("en",),
            scheme=CONLL,
            folder="conll2003",
            files={"train": "train.txt", "validation": "valid.txt", "test": "test.txt"},
            reader=dict(separator=" ", num_columns=4, token_column=0, tag_column=3, tag_scheme="iob1"),
            license="Reuters RCV1: research use only, not redistributable",
            citation="Tjong Kim Sang and De Meulder (2003), Introduction to the CoNLL-2003 Shared Task",
            domain="news",
        ),
        CorpusSpec(
            name="conll2002",
            languages=("es", "nl"),
            scheme=CONLL,
            folder="conll2002",
            files={"train": "{lang}/train.txt", "validation": "{lang}/dev.txt", "test": "{lang}/test.txt"},
            # Spanish train has one sentence opening with a stray I-LOC: repaired to B-LOC, as conlleval reads it.
            reader=dict(separator=" ", num_columns=3, token_column=0, tag_column=2, on_invalid="repair"),
            license="research use for the CoNLL-2002 shared task only; no commercial use",
            citation="Tjong Kim Sang (2002), Introduction to the CoNLL-2002 Shared Task",
            domain="news",
        ),
        CorpusSpec(
            name="europarl-ner",
            languages=("en", "de", "es", "it"),
            scheme=CONLL,
            folder="europarl-ner",
            files={"test": "{lang}-europarl.test.conll02"},
            reader=dict(separator="\t", num_columns=2, token_column=0, tag_column=1),
            license="Europarl terms of use",
            citation="Agerri et al. (2018), Building Named Entity Recognition Taggers via Parallel Corpora, LREC",
            domain="parliament",
        ),
        CorpusSpec(
            name="masakhaner2",
            languages=MASAKHANER2_LANGUAGES,
            scheme=MASAKHANER,
            folder="masakhaner2",
            files={"train": "{lang}/train.txt", "validation": "{lang}/dev.txt", "test": "{lang}/test.txt"},
            # A single space: some tokens are empty strings (a line " O"), which whitespace splitting would lose.
            # Most languages have a few stray I- tags: repaired to B-, as conlleval reads them.
            reader=dict(separator=" ", num_columns=2, token_column=0, tag_column=1, on_invalid="repair"),
            license="CC BY-NC 4.0",
            citation="Adelani et al. (2022), MasakhaNER 2.0: Africa-centric Transfer Learning for NER, EMNLP",
            domain="news",
        ),
        CorpusSpec(
            name="xner-sample",
            languages=("en",),
            scheme=CONLL,
            folder="samples",
            files={"train": "sample-en.conll"},
            reader=dict(separator=" ", num_columns=2, comment_prefix="#"),
            license="Apache-2.0 (written for xner)",
            domain="news",
            builtin_dir=os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples"),
        ),
        CorpusSpec(
            name="germeval2014",
            languages=("de",),
            scheme=GERMEVAL,
            folder="germeval2014",
            files={"train": "NER-de-train.tsv", "validation": "NER-de-dev.tsv", "test": "NER-de-test.tsv"},
            # Outer (first-level) entities only: column 2; column 3 holds the embedded ones.
            reader=dict(separator="\t", num_columns=4, token_column=1, tag_column=2, comment_prefix="#"),
            license="CC BY 4.0",
            citation="Benikova, Biemann and Reznicek (2014), NoSta-D Named Entity Annotation for German, LREC",
            domain="wikipedia+news",
        ),
    )
}

WIKIANN_SPEC = CorpusSpec(
    name="wikiann",
    languages=(),  # any of WikiANN's 176 languages
    scheme=WIKIANN,
    folder="wikiann",
    files={"train": "{lang}/train", "validation": "{lang}/validation", "test": "{lang}/test"},
    license="unknown (WikiANN, Pan et al. 2017)",
    citation="Pan et al. (2017), Cross-lingual Name Tagging and Linking for 282 Languages, ACL",
    domain="wikipedia",
)
WIKIANN_HUB_ID = "unimelb-nlp/wikiann"  # parquet, one config per language; no loading script


def corpus_spec(name: str) -> CorpusSpec:
    if name == "wikiann":
        return WIKIANN_SPEC
    try:
        return CORPORA[name]
    except KeyError:
        raise ValueError(f"unknown corpus {name!r}; known: {sorted([*CORPORA, 'wikiann'])}") from None


def default_data_dir() -> str:
    """``$XNER_DATA_DIR`` if set, else ``../shared/data`` next to the current directory."""
    return os.environ.get("XNER_DATA_DIR", os.path.join("..", "shared", "data"))


def load_corpus(
    name: str,
    data_dir: Optional[str] = None,
    lang: Optional[str] = None,
    splits: Optional[Sequence[str]] = None,
    cache_dir: Optional[str] = None,
    on_invalid: Optional[str] = None,
) -> datasets.DatasetDict:
    """Load a known corpus as a ``DatasetDict`` of ``tokens`` and IOB2 ``ner_tags``.

    ``splits`` selects splits (default: all of the corpus'); a missing file is an error that names
    it. ``on_invalid`` ("raise" or "repair": a stray I- becomes B-) overrides the corpus' default,
    which is "repair" for corpora known to hold a few stray I- tags (CoNLL-2002, MasakhaNER 2.0).
    """
    spec = corpus_spec(name)
    if name == "wikiann":
        from dataset_builders.wikiann import load_wikiann

        return load_wikiann(lang, data_dir=data_dir, splits=splits, cache_dir=cache_dir)
    paths = corpus_files(name, data_dir, lang, splits)
    missing = [f"{split}: {path}" for split, path in paths.items() if not os.path.isfile(path)]
    if missing:
        raise FileNotFoundError(
            f"{name} ({lang or spec.languages[0]}): missing file(s) {missing}; point data_dir at the folder holding "
            f"'{spec.folder}/' or choose splits= among those present"
        )
    reader = dict(spec.reader)
    if on_invalid is not None:
        reader["on_invalid"] = on_invalid
    return read_conll(paths, label_names=spec.scheme.label_names, cache_dir=cache_dir, **reader)


def corpus_files(
    name: str, data_dir: Optional[str] = None, lang: Optional[str] = None, splits: Optional[Sequence[str]] = None
) -> dict[str, str]:
    """Split -> the path of a (CoNLL-style) corpus' file, whether or not it exists."""
    spec = corpus_spec(name)
    if lang is None:
        if len(spec.languages) != 1:
            raise ValueError(f"corpus {name!r} has several languages {spec.languages}: pass lang=")
        lang = spec.languages[0]
    if lang not in spec.languages:
        raise ValueError(f"corpus {name!r} has no language {lang!r}; it has {spec.languages}")
    if spec.builtin_dir and not (data_dir and os.path.isdir(os.path.join(data_dir, spec.folder))):
        data_dir = spec.builtin_dir  # shipped with the package: found whatever data_dir the other corpora use
    paths = spec.paths(data_dir or default_data_dir(), lang)
    if splits is not None:
        unknown = [s for s in splits if s not in paths]
        if unknown:
            raise ValueError(f"corpus {name!r} has no split {unknown}; it has {list(paths)}")
        paths = {s: paths[s] for s in splits}
    return paths


def available_splits(name: str, data_dir: Optional[str] = None, lang: Optional[str] = None) -> list[str]:
    """The splits of a corpus whose files exist under ``data_dir``."""
    spec = corpus_spec(name)
    lang = lang or (spec.languages[0] if len(spec.languages) == 1 else None)
    if lang is None:
        raise ValueError(f"corpus {name!r} has several languages {spec.languages}: pass lang=")
    paths = spec.paths(data_dir or spec.builtin_dir or default_data_dir(), lang)
    return [split for split, path in paths.items() if os.path.isfile(path)]
