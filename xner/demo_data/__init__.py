"""The built-in demo corpus of ``xner demo``: English and Spanish sentences written for xner.

Every file here is written by :mod:`xner.demo_data.generate` (deterministic, seeded: ``python -m
xner.demo_data.generate`` rewrites them byte for byte) from templates and name lists in that
script; nothing is copied from any corpus. Licence: Apache-2.0, like xner.

=========================  =====  ===================================================================
file                       rows   what
=========================  =====  ===================================================================
en.train.conll             400    English news sentences, gold IOB2 tags (PER ORG LOC MISC)
es.train.conll             400    their Spanish translations (sentence-parallel), gold tags
es.unlabelled.txt          400    other Spanish news sentences, raw text, one per line (no tags)
es.test.conll              150    Spanish news, gold tags (in domain)
es.test-parliament.conll   150    Spanish parliamentary debate, gold tags (out of domain)
=========================  =====  ===================================================================

CoNLL files hold ``token TAG`` lines and a blank line after each sentence; tokens follow
:func:`projection.word_split.split_words` (the generator checks that splitting each sentence's text
gives back its tokens).
"""

from __future__ import annotations

import os

DATA_DIR = os.path.dirname(os.path.abspath(__file__))

FILES = {
    "en-train": "en.train.conll",
    "es-train": "es.train.conll",
    "es-unlabelled": "es.unlabelled.txt",
    "es-test": "es.test.conll",
    "es-test-parliament": "es.test-parliament.conll",
}

DOMAINS = {
    "en-train": "news",
    "es-train": "news",
    "es-unlabelled": "news",
    "es-test": "news",
    "es-test-parliament": "parliament",
}


def path(key: str) -> str:
    """The shipped file for ``key`` (one of :data:`FILES`)."""
    return os.path.join(DATA_DIR, FILES[key])
