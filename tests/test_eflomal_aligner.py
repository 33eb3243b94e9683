"""EflomalAligner on a synthetic parallel corpus with known links, its guards (empty and long
sentences, odd words), the consensus of runs, pickling, and one check on real Europarl text."""

import pickle
import random
import sys

import pytest

eflomal = pytest.importorskip("eflomal", reason="eflomal is not installed: pip install 'xner[stat]'")

from projection import eflomal_aligner as module  # noqa: E402
from projection.eflomal_aligner import EflomalAligner  # noqa: E402
from projection.symmetrize import symmetrize  # noqa: E402

FAST = dict(rel_iterations=0.5, n_samplers=2)


def synthetic_corpus(n_pairs=300, seed=0):
    """Word-for-word translations with a known dictionary: s<k> -> t<k>, except that s0..s4 become
    two words (t<k>a t<k>b), and one adjacent pair of words is swapped in most sentences.
    Returns source sentences, target sentences and the gold links."""
    rng = random.Random(seed)
    src, tgt, gold = [], [], []
    for _ in range(n_pairs):
        s = [f"s{rng.randrange(80)}" for _ in range(rng.randint(4, 12))]
        order = list(range(len(s)))
        if rng.random() < 0.8:
            a = rng.randrange(len(s) - 1)
            order[a], order[a + 1] = order[a + 1], order[a]
        t, links = [], set()
        for i in order:
            k = int(s[i][1:])
            for w in [f"t{k}a", f"t{k}b"] if k < 5 else [f"t{k}"]:
                links.add((i, len(t)))
                t.append(w)
        src.append(s)
        tgt.append(t)
        gold.append(links)
    return src, tgt, gold


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus()


def precision_recall(predicted, gold):
    tp = sum(len(set(p) & g) for p, g in zip(predicted, gold))
    return tp / max(1, sum(len(p) for p in predicted)), tp / max(1, sum(len(g) for g in gold))


def test_recovers_known_links(corpus):
    src, tgt, gold = corpus
    out = EflomalAligner().align(src, tgt)
    assert len(out) == len(src)
    assert all(links == sorted(set(links)) for links in out)
    assert all(0 <= i < len(s) and 0 <= j < len(t) for links, s, t in zip(out, src, tgt) for i, j in links)
    precision, recall = precision_recall(out, gold)
    assert precision > 0.9 and recall > 0.9, (precision, recall)


def test_empty_odd_and_long_sentences_do_not_shift_others(corpus):
    src, tgt, gold = (list(x) for x in corpus)
    src[3], tgt[5] = [], []
    src[7], tgt[7] = [], []
    src[9], tgt[9] = ["x"] * 1100, ["y"] * 1100  # over eflomal's 1024-word limit
    # a word with a space and an empty word must still count as one word each
    src[11] = ["New York"] + src[11] + [""]
    gold[11] = {(i + 1, j) for i, j in gold[11]}
    out = EflomalAligner(**FAST).align(src, tgt)
    assert out[3] == out[5] == out[7] == out[9] == []
    kept = [k for k in range(len(src)) if k not in (3, 5, 7, 9)]
    precision, recall = precision_recall([out[k] for k in kept], [gold[k] for k in kept])
    assert precision > 0.85 and recall > 0.85, (precision, recall)
    later = range(12, len(src))
    assert precision_recall([out[k] for k in later], [gold[k] for k in later])[1] > 0.85
    assert len(set(out[11]) & gold[11]) >= 0.7 * len(gold[11])


def test_all_empty_does_not_call_eflomal(monkeypatch):
    monkeypatch.setattr(eflomal, "align", lambda *a, **k: pytest.fail("eflomal should not run"))
    assert EflomalAligner().align([[], ["a"]], [["b"], []]) == [[], []]
    assert EflomalAligner().align([], []) == []


def test_symmetrization_option_is_used(corpus, monkeypatch):
    src, tgt, _ = corpus
    calls = []

    def recording(forward, reverse, m, n, method):
        calls.append((forward, reverse, m, n, method))
        return symmetrize(forward, reverse, m, n, method)

    monkeypatch.setattr(module, "symmetrize", recording)
    out = EflomalAligner(symmetrization="intersection", **FAST).align(src[:100], tgt[:100])
    assert len(calls) == 100 and {c[4] for c in calls} == {"intersection"}
    for links, (forward, reverse, m, n, _) in zip(out, calls):
        assert links == sorted(set(forward) & set(reverse))
    # the reverse links arrive in source->target orientation (the sentences differ in length
    # because s0..s4 become two target words, so a swapped orientation would be out of range)
    assert all(i < m and j < n for _, reverse, m, n, _ in calls for i, j in reverse)


def fake_eflomal_runs(monkeypatch, runs_links):
    """Replace the eflomal binary by one that writes given links, one (forward, reverse) per run."""
    runs = iter(runs_links)

    def fake_align(src_file, tgt_file, links_filename_fwd, links_filename_rev, **_):
        forward, reverse = next(runs)
        for path, sentences in ((links_filename_fwd, forward), (links_filename_rev, reverse)):
            with open(path, "w") as f:
                f.writelines(" ".join(f"{i}-{j}" for i, j in links) + "\n" for links in sentences)

    monkeypatch.setattr(eflomal, "align", fake_align)


def test_consensus_of_runs(monkeypatch):
    # one sentence pair of 3 x 3 words; union symmetrisation so that each run's links are
    # exactly what it wrote. (0,0) is in 3 runs, (1,1) in 2, (2,2) and (2,1) in 1 each.
    fake_eflomal_runs(
        monkeypatch,
        [([[(0, 0), (1, 1)]], [[]]), ([[(0, 0)]], [[(1, 1)]]), ([[(0, 0), (2, 2)]], [[(2, 1)]])],
    )
    out = EflomalAligner(symmetrization="union", runs=3).align([["a", "b", "c"]], [["x", "y", "z"]])
    assert out == [[(0, 0), (1, 1)]]


def test_out_of_range_link_from_eflomal_names_the_sentence(monkeypatch):
    fake_eflomal_runs(monkeypatch, [([[], [(0, 5)]], [[], []])])
    with pytest.raises(RuntimeError, match=r"forward link '0-5' for sentence pair 2 is out of range"):
        EflomalAligner().align([["a"], [], ["b", "c"]], [["x"], ["w"], ["y", "z"]])


def test_extra_parallel_pairs_and_files(corpus, tmp_path):
    src, tgt, gold = corpus
    extra = list(zip(src[20:], tgt[20:]))
    out = EflomalAligner(extra_parallel=extra, **FAST).align(src[:20], tgt[:20])
    assert len(out) == 20
    assert precision_recall(out, gold[:20])[1] > 0.85

    (tmp_path / "src.txt").write_text("".join(" ".join(s) + "\n" for s in src[20:]), encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("".join(" ".join(t) + "\n" for t in tgt[20:]), encoding="utf-8")
    aligner = EflomalAligner(extra_parallel=(tmp_path / "src.txt", tmp_path / "tgt.txt"), **FAST)
    assert aligner._extra() == ([" ".join(s) for s in src[20:]], [" ".join(t) for t in tgt[20:]])
    assert precision_recall(aligner.align(src[:20], tgt[:20]), gold[:20])[1] > 0.85

    (tmp_path / "short.txt").write_text("one line\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not line-aligned: .*src.txt has 280 lines, .*short.txt has 1"):
        EflomalAligner(extra_parallel=(tmp_path / "src.txt", tmp_path / "short.txt")).align([["a"]], [["b"]])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        EflomalAligner(extra_parallel=(tmp_path / "src.txt", tmp_path / "missing.txt"))


def test_pickle_and_fingerprint(corpus, tmp_path):
    from datasets.fingerprint import Hasher

    src, tgt, _ = corpus
    (tmp_path / "a.txt").write_text("a b\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("c d\n", encoding="utf-8")
    aligner = EflomalAligner(
        "grow-diag", extra_parallel=(str(tmp_path / "a.txt"), str(tmp_path / "b.txt")), n_iterations=(2, 2, 4), runs=2
    )
    before = (pickle.dumps(aligner), Hasher.hash(aligner))
    aligner.align(src[:30], tgt[:30])  # fills the extra-text cache, which must not be pickled
    assert (pickle.dumps(aligner), Hasher.hash(aligner)) == before
    clone = pickle.loads(before[0])
    assert clone.config == aligner.config and repr(clone) == repr(aligner)
    assert clone.config["n_iterations"] == [2, 2, 4] and clone.config["symmetrization"] == "grow-diag"
    assert "<1 pairs>" in repr(EflomalAligner(extra_parallel=[(["a"], ["b"])]))


def test_invalid_input_and_settings():
    with pytest.raises(ValueError, match="2 source sentences but 1 target"):
        EflomalAligner().align([["a"], ["b"]], [["c"]])
    with pytest.raises(TypeError, match="target sentence 1 must be a list of words"):
        EflomalAligner().align([["a"], ["b"]], [["c"], "d e"])
    with pytest.raises(ValueError, match="unknown symmetrization 'gdfa'"):
        EflomalAligner("gdfa")
    with pytest.raises(ValueError, match="n_iterations"):
        EflomalAligner(n_iterations=(1, 2))
    with pytest.raises(TypeError, match="extra_parallel item 0"):
        EflomalAligner(extra_parallel=[("a b", "c d")])


def test_missing_eflomal_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "eflomal", None)
    with pytest.raises(ImportError, match=r"pip install 'xner\[stat\]'"):
        EflomalAligner().align([["a"]], [["b"]])


def read_conll_words(path):
    sentences, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            current.append(line.split("\t")[0])
        elif current:
            sentences.append(current)
            current = []
    return sentences + ([current] if current else [])


@pytest.mark.corpora
def test_europarl_identical_tokens_are_aligned(real_data_dir):
    """On the 799 parallel Europarl-NER sentences (en, es), words that occur once on each side,
    identically, and are capitalised or numbers (names, acronyms, years) are nearly always
    translations of each other: eflomal should link most of them (here about 0.9; reduced
    iterations keep the test at a few seconds)."""
    folder = real_data_dir / "europarl-ner"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found")
    en = read_conll_words(folder / "en-europarl.test.conll02")
    es = read_conll_words(folder / "es-europarl.test.conll02")
    assert len(en) == len(es) == 799
    out = EflomalAligner(rel_iterations=0.3, n_samplers=2).align(en, es)
    hits = total = 0
    for s, t, links in zip(en, es, out):
        for i, w in enumerate(s):
            if i > 0 and len(w) > 1 and (w[0].isupper() or w[0].isdigit()) and s.count(w) == 1 and t.count(w) == 1:
                total += 1
                hits += (i, t.index(w)) in links
    assert total > 150
    assert hits / total > 0.8, (hits, total)
