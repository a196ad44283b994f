"""Round 4's hostile review of the data path where any language meets resume, eval and `vocab`
auto: each test failed before its fix."""

import time
import warnings

import pytest

import scratchrnn as sr
from scratchrnn.errors import ScratchRNNError

TINY = dict(hidden=8, layers=1, batch=2, seq_len=8, max_steps=2, eval_every=2,
            sample_length=0)
RU = "Мой дядя самых честных правил, когда не в шутку занемог.\n" * 30
ZH = "「春眠不觉晓，处处闻啼鸟。」\n" * 30
EN = "It was the best of times, it was the worst of times.\n" * 30


def _train(path, out, **config):
    return sr.train(text=str(path), out=str(out), progress=False, log=lambda *a: None,
                    **{**TINY, **config})


@pytest.fixture
def texts(tmp_path):
    out = {}
    for name, text in {"ru": RU, "zh": ZH, "en": EN}.items():
        out[name] = tmp_path / f"{name}.txt"
        out[name].write_text(text, encoding="utf-8")
    return out


@pytest.mark.parametrize("min_count", [1, 31])  # 31: its rarer letters are U+FFFD
def test_a_text_of_none_of_the_models_characters_is_refused(texts, tmp_path, min_count):
    """A Russian model resumed (`allow_new_text`), planned or scored on Chinese text would
    read nothing but spaces or U+FFFD: refused, saying the model lacks the text's characters,
    not that the text is unusable (and with U+FFFD in the vocabulary it trained on them)."""
    run = tmp_path / "run"
    _train(texts["ru"], run, vocab="unicode", min_count=min_count)
    vocab = sr.load_checkpoint(run).vocab
    assert ("\ufffd" in vocab.chars) == (min_count > 1)
    says = "none of its characters but blanks are in the model's vocabulary"
    with pytest.raises(ScratchRNNError, match=says):
        sr.train(resume=str(run), text=str(texts["zh"]), allow_new_text=True, max_steps=4,
                 progress=False, log=lambda *a: None)
    with pytest.raises(ScratchRNNError, match=says):
        sr.plan(resume=str(run), text=str(texts["zh"]), allow_new_text=True, max_steps=4,
                measure_s=0.1)
    with pytest.raises(ScratchRNNError, match=says):  # what eval and visualize --text read
        sr.load_corpus(str(texts["zh"]), vocab)


def test_a_new_text_partly_of_other_characters_is_said(texts, tmp_path):
    """Resumed over a new text (`allow_new_text`), a model of the text's own characters reads
    the ones it lacks as U+FFFD or spaces: training says so once, as eval does."""
    run = tmp_path / "run"
    _train(texts["ru"], run, vocab="unicode")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(RU + ZH, encoding="utf-8")
    with pytest.warns(UserWarning, match=r"are not in the model's vocabulary .* as spaces"):
        sr.train(resume=str(run), text=str(mixed), allow_new_text=True, max_steps=4,
                 progress=False, log=lambda *a: None)
    with warnings.catch_warnings():  # its own text, unchanged: nothing to say
        warnings.simplefilter("error")
        sr.train(resume=str(run), text=str(mixed), max_steps=6, progress=False,
                 log=lambda *a: None)


def test_the_warning_of_unknown_characters_names_a_few(texts, tmp_path):
    """A text in another script may have thousands of characters a model lacks: the one
    warning line names a dozen and counts the rest, as every other message does (shown)."""
    from scratchrnn.training.evaluation import unknown_characters

    many = tmp_path / "many.txt"
    many.write_text(RU + "".join(map(chr, range(0x4E00, 0x4E00 + 3000))), encoding="utf-8")
    vocab = sr.Vocab.from_text(RU)
    with pytest.warns(UserWarning) as caught:
        assert unknown_characters(str(many), vocab) == 3000
    message = str(caught[0].message)
    assert "'丁' U+4E01" in message and "and 2,988 more" in message and len(message) < 600


def test_min_count_where_auto_chooses_ascii_says_auto_chose(texts, tmp_path):
    """`min_count` with `vocab` auto (the default) on an English text: auto chooses ascii, to
    which `min_count` does not apply. The refusal says so, not that the user asked for ascii."""
    says = r"`vocab` auto chose ascii .*`min_count` applies to `vocab` unicode"
    with pytest.raises(ScratchRNNError, match=says):
        _train(texts["en"], tmp_path / "run", min_count=3)
    with pytest.raises(ScratchRNNError, match=says):
        sr.load_corpus(str(texts["en"]), min_count=3)
    assert not (tmp_path / "run").exists()
    _train(texts["ru"], tmp_path / "ru", min_count=3)  # auto chooses unicode: applies
    assert sr.load_checkpoint(tmp_path / "ru").config["vocab"] == "unicode"


def test_auto_reads_every_file_of_a_folder(tmp_path, monkeypatch):
    """`vocab` auto on a folder: a Chinese file after more English than auto samples was
    transliterated to pinyin under 'its letters are ASCII': it was never read. Each file
    is sampled now, its share of the sample."""
    from scratchrnn.data import corpus

    monkeypatch.setattr(corpus, "AUTO_SAMPLE", 4000)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a_en.txt").write_text(EN * 10)  # 16,000 characters
    (tmp_path / "mixed" / "b_zh.txt").write_text(ZH, encoding="utf-8")
    name, why = corpus.choose_vocab(sorted((tmp_path / "mixed").iterdir()))
    assert name == "unicode" and "not ASCII" in why
    (tmp_path / "mixed" / "b_zh.txt").write_text(EN)
    assert corpus.choose_vocab(sorted((tmp_path / "mixed").iterdir()))[0] == "ascii"


def test_min_count_that_leaves_only_blanks_and_unknown_is_refused(tmp_path):
    """Every letter rarer than `min_count`, the spaces not: the run read nothing but U+FFFD
    and spaces, and trained on that (0.68 nats/char). Refused, naming `min_count`."""
    sparse = tmp_path / "sparse.txt"
    sparse.write_text(" ".join(chr(0x4E00 + i) for i in range(2000)), encoding="utf-8")
    with pytest.raises(ScratchRNNError, match="`min_count` 3 leaves .* lower it"):
        _train(sparse, tmp_path / "run", min_count=3)
    assert not (tmp_path / "run").exists()


def test_counting_unknown_characters_does_not_grow_with_their_variety(tmp_path):
    """eval/visualize --text (and a resume over a new text) count the characters a model
    lacks: one pass per distinct character took 8 s of CPU for 4M Chinese characters against a
    Russian model. The cost must not grow with how many distinct ones there are."""
    from scratchrnn.training.evaluation import unknown_characters

    vocab = sr.Vocab.from_text(RU)
    times = []
    for distinct in (8, 4000):
        text = "".join(chr(0x4E00 + i % distinct) for i in range(400_000))
        path = tmp_path / f"{distinct}.txt"
        path.write_text("\n".join(text[i:i + 80] for i in range(0, len(text), 80)),
                        encoding="utf-8")
        t = time.process_time()
        with pytest.warns(UserWarning, match=r"'丁' U\+4E01"):
            assert unknown_characters(str(path), vocab) == 400_000
        times.append(time.process_time() - t)
    assert times[1] < 5 * times[0] + 0.05, times


@pytest.mark.filterwarnings("ignore:this run was imported")
def test_an_imported_run_resumed_on_a_text_it_lacks_characters_of_says_so(texts, tmp_path):
    """An imported run records no text, so every text it is resumed on is new to it: the
    characters its vocabulary lacks are said, as over a new text (a run from before runs
    recorded their text is checked alike; its own text has none to say)."""
    pytest.importorskip("safetensors")
    from scratchrnn.cli.commands import main

    run = tmp_path / "run"
    _train(texts["ru"], run, vocab="unicode")
    assert main(["export", str(run), "--format", "torch", "--out", str(tmp_path / "m.st")]) == 0
    assert main(["import", str(tmp_path / "m.st"), "--out", str(tmp_path / "imp")]) == 0
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(RU + ZH, encoding="utf-8")
    with pytest.warns(UserWarning, match=r"are not in the model's vocabulary .* as spaces"):
        sr.train(resume=str(tmp_path / "imp"), text=str(mixed), max_steps=2,
                 progress=False, log=lambda *a: None)


def test_an_imported_run_is_not_called_old_on_resume(tmp_path, texts):
    """Resuming an imported run warned that it 'was saved before scratchrnn recorded its
    text': it was imported, and records none."""
    pytest.importorskip("safetensors")
    from scratchrnn.cli.commands import main

    run = tmp_path / "run"
    _train(texts["ru"], run, vocab="unicode")
    assert main(["export", str(run), "--format", "torch", "--out", str(tmp_path / "m.st")]) == 0
    assert main(["import", str(tmp_path / "m.st"), "--out", str(tmp_path / "imp")]) == 0
    longer = tmp_path / "longer.txt"  # the imported run's batch 32 x 51 characters
    longer.write_text(RU * 2, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sr.train(resume=str(tmp_path / "imp"), text=str(longer), max_steps=2,
                 progress=False, log=lambda *a: None)
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "was imported" in said[0] and "saved before" not in said[0]
