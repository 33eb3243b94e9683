"""Word splitting of translations: CoNLL conventions on real-world text in several scripts, and
offsets that always put the tokens back where they came from."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from projection.word_split import split_words, split_words_with_offsets

CASES = [
    # English, CoNLL-2003 conventions
    (
        "EU rejects German call to boycott British lamb.",
        None,
        ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."],
    ),
    (
        "I don't think John's car (a 3.5-litre) cost $1,000.",
        None,
        ["I", "do", "n't", "think", "John", "'s", "car", "(", "a", "3.5-litre", ")", "cost", "$", "1,000", "."],
    ),
    (
        "We can't, won't and shouldn't've; they're sure I'm right, you'd say we'll see.",
        "en",
        [
            "We",
            "ca",
            "n't",
            ",",
            "wo",
            "n't",
            "and",
            "should",
            "n't",
            "'ve",
            ";",
            "they",
            "'re",
            "sure",
            "I",
            "'m",
            "right",
            ",",
            "you",
            "'d",
            "say",
            "we",
            "'ll",
            "see",
            ".",
        ],
    ),
    (
        "O'Brien met O'Neill at 5 o'clock; the players' union said 'no'.",
        None,
        [
            "O'Brien",
            "met",
            "O'Neill",
            "at",
            "5",
            "o'clock",
            ";",
            "the",
            "players",
            "'",
            "union",
            "said",
            "'",
            "no",
            "'",
            ".",
        ],
    ),
    ("JOHN'S Don’t", None, ["JOHN", "'S", "Do", "n’t"]),
    (
        "The U.S. and the U.K. signed, e.g. in U.S.-led talks.",
        None,
        ["The", "U.S.", "and", "the", "U.K.", "signed", ",", "e.g.", "in", "U.S.-led", "talks", "."],
    ),
    (
        "John F. Kennedy met Mr. Smith of Acme Inc. in Calif. on Aug. 22.",
        None,
        ["John", "F.", "Kennedy", "met", "Mr.", "Smith", "of", "Acme", "Inc.", "in", "Calif.", "on", "Aug.", "22", "."],
    ),
    ("He bought plan B.", None, ["He", "bought", "plan", "B", "."]),
    (
        "It rose 3.5% to 1,234.56 at 10:30 on 22/08/1996, a 2-1 win.",
        None,
        ["It", "rose", "3.5", "%", "to", "1,234.56", "at", "10:30", "on", "22/08/1996", ",", "a", "2-1", "win", "."],
    ),
    (
        "A well-known, state-of-the-art AT&T R&D lab -- wait... really?!",
        None,
        ["A", "well-known", ",", "state-of-the-art", "AT&T", "R&D", "lab", "--", "wait", "...", "really", "?", "!"],
    ),
    (
        "Call +44 171 542 or pay US$ 5, C$5 or .500 at -20ºC; and/or **",
        None,
        [
            "Call",
            "+44",
            "171",
            "542",
            "or",
            "pay",
            "US$",
            "5",
            ",",
            "C$",
            "5",
            "or",
            ".500",
            "at",
            "-20ºC",
            ";",
            "and/or",
            "**",
        ],
    ),
    ("1. Ajax 3 2 1 0 in the '90s", None, ["1.", "Ajax", "3", "2", "1", "0", "in", "the", "'90s"]),
    ("pre- and post-war", None, ["pre-", "and", "post-war"]),
    (
        'He said: "Go [now] {please}!"',
        None,
        ["He", "said", ":", '"', "Go", "[", "now", "]", "{", "please", "}", "!", '"'],
    ),
    (
        "Write to john.doe+ner@example.co.uk or see https://en.wikipedia.org/wiki/NER_(x)?a=1&b=2.",
        None,
        [
            "Write",
            "to",
            "john.doe+ner@example.co.uk",
            "or",
            "see",
            "https://en.wikipedia.org/wiki/NER_(x)?a=1&b=2",
            ".",
        ],
    ),
    (
        "Visit www.europarl.europa.eu, Amazon.com's site or bbc.co.uk, the U.S.'s.",
        None,
        [
            "Visit",
            "www.europarl.europa.eu",
            ",",
            "Amazon.com",
            "'s",
            "site",
            "or",
            "bbc.co.uk",
            ",",
            "the",
            "U.S.",
            "'s",
            ".",
        ],
    ),
    # Spanish, Portuguese, Catalan, French, Italian, German
    (
        "¿Dónde está «el niño»? ¡Aquí, en Málaga!",
        "es",
        ["¿", "Dónde", "está", "«", "el", "niño", "»", "?", "¡", "Aquí", ",", "en", "Málaga", "!"],
    ),
    (
        "El Sr. García llegó a la ONU el 3 de mayo de 2004.",
        "es",
        ["El", "Sr.", "García", "llegó", "a", "la", "ONU", "el", "3", "de", "mayo", "de", "2004", "."],
    ),
    (
        "O presidente Lula da Silva visitou São Paulo.",
        "pt",
        ["O", "presidente", "Lula", "da", "Silva", "visitou", "São", "Paulo", "."],
    ),
    (
        "L'home porta'ls llibres al col·legi d'Andorra.",
        "ca",
        ["L'", "home", "porta", "'ls", "llibres", "al", "col·legi", "d'", "Andorra", "."],
    ),
    (
        "L'homme d'affaires est arrivé aujourd'hui à Paris, jusqu'à l'Élysée.",
        "fr",
        [
            "L'",
            "homme",
            "d'",
            "affaires",
            "est",
            "arrivé",
            "aujourd'hui",
            "à",
            "Paris",
            ",",
            "jusqu'",
            "à",
            "l'",
            "Élysée",
            ".",
        ],
    ),
    (
        "L’Unione europea dell’anno scorso, un po' meglio.",
        "it",
        ["L’", "Unione", "europea", "dell’", "anno", "scorso", ",", "un", "po", "'", "meglio", "."],
    ),
    ("L'homme d'affaires", None, ["L'homme", "d'affaires"]),  # English rules: not an elision
    (
        "Die Bundesrepublik Deutschland (BRD) – gegründet 1949 – z.B. in Nordrhein-Westfalen.",
        "de",
        [
            "Die",
            "Bundesrepublik",
            "Deutschland",
            "(",
            "BRD",
            ")",
            "–",
            "gegründet",
            "1949",
            "–",
            "z.B.",
            "in",
            "Nordrhein-Westfalen",
            ".",
        ],
    ),
    (
        "Am 18. Juni, d. h. im 20. Jahrhundert, für Struktur- und Regionalpolitik usw. im Jahr 1990.",
        "de",
        [
            "Am",
            "18.",
            "Juni",
            ",",
            "d.",
            "h.",
            "im",
            "20.",
            "Jahrhundert",
            ",",
            "für",
            "Struktur-",
            "und",
            "Regionalpolitik",
            "usw.",
            "im",
            "Jahr",
            "1990",
            ".",
        ],
    ),
    (
        "Hij zei 't en fr. 10 in 's-Hertogenbosch",
        "nl",
        ["Hij", "zei", "'t", "en", "fr.", "10", "in", "'s-Hertogenbosch"],
    ),
    (
        "Straße, Ærøskøbing, Łódź, İstanbul, Đà Nẵng.",
        "xx",
        ["Straße", ",", "Ærøskøbing", ",", "Łódź", ",", "İstanbul", ",", "Đà", "Nẵng", "."],
    ),
    ("Cafe\u0301 decomposed", None, ["Cafe\u0301", "decomposed"]),
    # Cyrillic, Greek
    (
        "Владимир Путин посетил Санкт-Петербург 12.06.2020 г.",
        "ru",
        ["Владимир", "Путин", "посетил", "Санкт-Петербург", "12.06.2020", "г", "."],
    ),
    ("М'ясо з Києва — «смачне»!", "uk", ["М'ясо", "з", "Києва", "—", "«", "смачне", "»", "!"]),
    (
        "Ο Κυριάκος Μητσοτάκης επισκέφθηκε την Αθήνα; Ναι.",
        "el",
        ["Ο", "Κυριάκος", "Μητσοτάκης", "επισκέφθηκε", "την", "Αθήνα", ";", "Ναι", "."],
    ),
    # Arabic (harakat are combining marks), Persian with ZWNJ, Hebrew
    ("ذهب مُحَمَّد إلى القاهرة، ثم عاد؟", "ar", ["ذهب", "مُحَمَّد", "إلى", "القاهرة", "،", "ثم", "عاد", "؟"]),
    ("می\u200cخواهم به تهران بروم.", "fa", ["می\u200cخواهم", "به", "تهران", "بروم", "."]),
    ("בנימין נתניהו ביקר בירושלים.", "he", ["בנימין", "נתניהו", "ביקר", "בירושלים", "."]),
    # Devanagari (vowel signs and virama are combining marks), Bengali, Thai
    ("नरेंद्र मोदी भारत के प्रधानमंत्री हैं।", "hi", ["नरेंद्र", "मोदी", "भारत", "के", "प्रधानमंत्री", "हैं", "।"]),
    ("শেখ হাসিনা ঢাকায় থাকেন।", "bn", ["শেখ", "হাসিনা", "ঢাকায়", "থাকেন", "।"]),
    ("กรุงเทพมหานคร เป็นเมืองหลวง", "th", ["กรุงเทพมหานคร", "เป็นเมืองหลวง"]),
    # CJK: one token per character; Korean keeps its space-separated words
    ("習近平訪問了北京。", "zh", ["習", "近", "平", "訪", "問", "了", "北", "京", "。"]),
    (
        "東京は2024年に「オリンピック」を開催した。",
        "ja",
        [
            "東",
            "京",
            "は",
            "2024",
            "年",
            "に",
            "「",
            "オ",
            "リ",
            "ン",
            "ピ",
            "ッ",
            "ク",
            "」",
            "を",
            "開",
            "催",
            "し",
            "た",
            "。",
        ],
    ),
    ("서울은 대한민국의 수도이다.", "ko", ["서울은", "대한민국의", "수도이다", "."]),
    # whitespace and invisible separators
    (
        "  tabs\tand\nnewlines\u00a0and\u2003spaces\u200bzero-width\ufeff ",
        None,
        ["tabs", "and", "newlines", "and", "spaces", "zero-width"],
    ),
    ("", None, []),
    ("   ", None, []),
]


@pytest.mark.parametrize("text, lang, expected", CASES, ids=[c[0][:30] for c in CASES])
def test_examples(text, lang, expected):
    assert split_words(text, lang) == expected


def test_offsets():
    text = "I don't  like Mr. Smith's U.S. plan."
    spans = split_words_with_offsets(text)
    assert [t for t, _, _ in spans] == ["I", "do", "n't", "like", "Mr.", "Smith", "'s", "U.S.", "plan", "."]
    assert spans[1:3] == [("do", 2, 4), ("n't", 4, 7)]
    assert all(text[s:e] == t for t, s, e in spans)


def test_language_codes_are_normalised():
    assert split_words("l'homme", "fr-CA") == split_words("l'homme", "FRA") == ["l'", "homme"]


def test_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a str, got list"):
        split_words(["already", "split"])


def test_tokenised_text_comes_back_unchanged():
    sentence = "Germany 's representative to the European Union 's committee said on Wednesday ."
    assert split_words(sentence) == sentence.split()


@pytest.mark.corpora
@pytest.mark.parametrize(
    "path, column_separator, lang",
    [("conll2003/iob2/train.txt", " ", "en"), ("europarl-ner/de-europarl.test.conll02", "\t", "de")],
)
def test_conll_sentences_split_back_into_their_tokens(real_data_dir, path, column_separator, lang):
    """Tokens of a CoNLL corpus joined by spaces split back into the same tokens in 99% of the
    sentences (what is left in CoNLL-2003 is mostly table debris such as "30.AUG.96", "Tel+44")."""
    sentences, current = [], []
    for line in (real_data_dir / path).read_text(encoding="utf-8").splitlines():
        token = line.split(column_separator)[0]
        if token and token != "-DOCSTART-":
            current.append(token)
        elif current:
            sentences.append(current)
            current = []
    same = sum(split_words(" ".join(s), lang) == s for s in sentences)
    assert same / len(sentences) >= 0.99, (same, len(sentences))


_SKIPPED = re.compile(r"[\s\u200b\u2060\ufeff]")
_TEXT = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(list(" '’.,-&:/@·$+*\u200b\u200c\u0301\u093f東")),
        st.sampled_from("n't 's U.S. http://a.b/c x.com a@b.cc l' 3.5 Mr US$ 12 Struktur-".split()),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(_TEXT, st.sampled_from([None, "en", "fr", "it", "ca", "es", "de", "nl", "ja"]))
def test_offsets_round_trip(text, lang):
    spans = split_words_with_offsets(text, lang)
    assert "".join(t for t, _, _ in spans) == _SKIPPED.sub("", text)
    previous_end = 0
    for tok, start, end in spans:
        assert tok and text[start:end] == tok
        assert start >= previous_end
        assert not _SKIPPED.search(tok)
        previous_end = end
