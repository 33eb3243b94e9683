"""HFTranslator on a tiny seq2seq model built here, and the language-code mappings."""

import pickle

import pytest
from datasets.fingerprint import Hasher

from projection.languages import nllb_code, to_iso1, to_iso3
from projection.translate_hf import HFTranslator


@pytest.fixture(scope="module")
def tiny_seq2seq(tmp_path_factory):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
    from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerFast

    texts = ["the cat sat on the mat", "a dog ran in the park", "Maria lives in Madrid", "el gato", "un perro"]
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    config = BartConfig(
        vocab_size=tok.get_vocab_size(),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("bart"))
    model = BartForConditionalGeneration(config)
    with torch.no_grad():  # an untrained model would stop at once: make it emit words until max_length
        model.final_logits_bias[0, [0, 1, 2, 3]] = -1e4
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_batches_sorted_by_length_come_back_in_order(tiny_seq2seq):
    texts = ["the cat sat on the mat", "", "a dog", "Maria lives in Madrid", "   "]
    batched = HFTranslator(tiny_seq2seq, "en", "es", batch_size=2, num_beams=1, max_length=12, device="cpu")
    single = HFTranslator(tiny_seq2seq, "en", "es", batch_size=1, num_beams=1, max_length=12, device="cpu")
    out = batched.translate(texts)
    assert len(out) == 5 and out[1] == "" and out[4] == ""
    assert out == single.translate(texts)  # padding in a batch changes nothing
    assert all(out[k] for k in (0, 2, 3))


def test_pickles_without_weights_and_hashes_stably(tiny_seq2seq):
    translator = HFTranslator(tiny_seq2seq, "en", "es", num_beams=1, device="cpu")
    before = Hasher.hash(translator)
    translator.translate(["a dog"])
    assert translator._model is not None
    assert Hasher.hash(translator) == before
    clone = pickle.loads(pickle.dumps(translator))
    assert clone._model is None and clone.config == translator.config


def test_bad_settings():
    with pytest.raises(ValueError, match="must be positive"):
        HFTranslator("x", "en", "es", num_beams=0)


def test_language_codes():
    assert to_iso3("es") == "spa" and to_iso3("yor") == "yor" and to_iso1("swa") == "sw"
    assert nllb_code("es") == "spa_Latn"
    assert nllb_code("sw") == "swh_Latn"  # NLLB uses the Swahili macrolanguage member
    assert nllb_code("ru") == "rus_Cyrl" and nllb_code("zh") == "zho_Hans" and nllb_code("yo") == "yor_Latn"
    assert nllb_code("hau_Latn") == "hau_Latn"
    with pytest.raises(ValueError, match="unknown ISO 639-1 code 'qq'"):
        nllb_code("qq")
    with pytest.raises(ValueError, match="does not know; close codes: \\['spa_Latn'\\]"):
        nllb_code("spa_Cyrl", known=["spa_Latn", "eng_Latn"])
