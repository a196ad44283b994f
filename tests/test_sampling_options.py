"""The sampling options of issue 31: beam search (checked against an exhaustive search on tiny
models), a stop text, several samples from one prompt, and a prompt read from a file; in the
API and on the command line. Their bad values are rows of test_bad_inputs.py and
test_api_errors.py."""

import itertools

import numpy as np
import pytest
from conftest import tiny_run

import scratchrnn as sr
from scratchrnn.cli.commands import build_parser, main
from scratchrnn.sampling.options import until
from scratchrnn.sampling.sampler import stepper


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("options"), "gru")


@pytest.fixture(scope="module")
def ckpt(run_dir):
    return sr.load_checkpoint(run_dir)


def tiny(cell: str, V: int, seed: int, layers: int = 1) -> tuple[sr.CharRNN, sr.Vocab]:
    """A random model over V letters, its weights scaled up so that its distributions are far
    from uniform (and the likeliest text is not a near-tie)."""
    model = sr.CharRNN(V, 6, cell, layers, seed=seed, init_std=0.8)
    return model, sr.Vocab("abcdefgh"[:V])


def log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def exhaustive(model, vocab, prime: str, length: int, stop_at: str | None = None):
    """The likeliest continuation by brute force: every text of `length` characters, cut
    after the first `stop_at` (stop text included in its score, not in its text)."""
    best = {}
    for ids in itertools.product(range(len(vocab)), repeat=length):
        step = stepper(model)
        for i in vocab.clean_prompt(prime):
            logits = step(int(i))
        score, text = 0.0, ""
        for c in ids:
            score += log_softmax(logits)[c]
            text += vocab.chars[c]
            if stop_at is not None and stop_at in text:
                text = text[:text.index(stop_at)]
                break
            logits = step(c)
        best[text] = score
    return max(best, key=best.get), best


CASES = [("rnn", 3, 4, 0), ("gru", 4, 3, 1), ("lstm", 3, 4, 2), ("gru", 4, 4, 3)]


@pytest.mark.parametrize("cell, V, length, seed", CASES)
def test_a_beam_as_wide_as_every_text_finds_the_likeliest_one(cell, V, length, seed):
    model, vocab = tiny(cell, V, seed, layers=2 if seed % 2 else 1)
    want, scores = exhaustive(model, vocab, "ab", length)
    top = sorted(scores.values())
    assert top[-1] - top[-2] > 1e-9  # a real winner, not a tie
    assert sr.sample(model, vocab, "ab", length, beam=V ** length) == "ab" + want
    assert "".join(sr.generate(model, vocab, "ab", length, beam=V ** length)) == want


@pytest.mark.parametrize("cell, V, length, seed", CASES[:3])
def test_a_beam_with_a_stop_text_finds_the_likeliest_text_ending_there(cell, V, length, seed):
    model, vocab = tiny(cell, V, seed)
    for stop in ("b", "ca"):
        want, _ = exhaustive(model, vocab, "a", length, stop)
        assert sr.sample(model, vocab, "a", length, beam=V ** length, stop_at=stop) == "a" + want


def test_a_narrow_beam_finds_no_better_text_than_the_exhaustive_search():
    model, vocab = tiny("gru", 4, 5)
    want, scores = exhaustive(model, vocab, "ab", 4)
    for width in (1, 2, 3, 5, 16):
        got = sr.sample(model, vocab, "ab", 4, beam=width)[2:]
        assert scores[got] <= scores[want]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_beam_of_one_is_greedy_argmax(cell, ckpt):
    model, vocab = tiny(cell, 5, 7, layers=2)
    greedy = sr.sample(model, vocab, "ab", 60, argmax=True)
    assert sr.sample(model, vocab, "ab", 60, beam=1) == greedy
    greedy = sr.sample(ckpt.model, ckpt.vocab, "It was", 200, argmax=True)
    assert sr.sample(ckpt.model, ckpt.vocab, "It was", 200, beam=1) == greedy


def test_a_beam_follows_a_clamp(ckpt):
    clamp = (1, 3, 1.0)
    greedy = sr.sample(ckpt.model, ckpt.vocab, "It was", 100, argmax=True, clamp=clamp)
    assert sr.sample(ckpt.model, ckpt.vocab, "It was", 100, beam=1, clamp=clamp) == greedy
    assert greedy != sr.sample(ckpt.model, ckpt.vocab, "It was", 100, argmax=True)


def test_a_wider_beam_scores_at_least_as_well_here(ckpt):
    """Not a theorem for every model, but the point of a beam: on the trained model, widths
    1, 4 and 16 find texts ever likelier (summed log-probability)."""
    def score(text):
        step, total = stepper(ckpt.model), 0.0
        for i in ckpt.vocab.clean_prompt("It was"):
            logits = step(int(i))
        for c in ckpt.vocab.clean_prompt(text):
            total += log_softmax(logits)[c]
            logits = step(int(c))
        return total

    scores = [score(sr.sample(ckpt.model, ckpt.vocab, "It was", 40, beam=k)[6:])
              for k in (1, 4, 16)]
    assert scores[0] <= scores[1] <= scores[2]


# ---------------------------------------------------------------------------- stop text

def test_a_stop_text_cuts_the_sample_before_it(ckpt):
    full = sr.sample(ckpt.model, ckpt.vocab, "It was", 300, seed=2)[6:]
    for stop in (full[40:42], full[100:103], "\n", " "):
        cut = sr.sample(ckpt.model, ckpt.vocab, "It was", 300, seed=2, stop_at=stop)
        assert cut == "It was" + full[:full.index(stop)]
    never = "It was" + full
    assert sr.sample(ckpt.model, ckpt.vocab, "It was", 300, seed=2, stop_at="QQ") == never
    argmax = sr.sample(ckpt.model, ckpt.vocab, "It was", 300, argmax=True)[6:]
    stop = argmax[20:22]
    got = sr.sample(ckpt.model, ckpt.vocab, "It was", 300, argmax=True, stop_at=stop)
    assert got == "It was" + argmax[:argmax.index(stop)]


def test_the_prompt_is_not_searched_for_the_stop_text(ckpt):
    first = sr.sample(ckpt.model, ckpt.vocab, "It was", 1, seed=4)[-1]
    full = sr.sample(ckpt.model, ckpt.vocab, "It was", 80, seed=4)[6:]
    stop = "s" + first  # spans the prompt's end and the first new character
    want = full[:full.index(stop)] if stop in full else full
    assert sr.sample(ckpt.model, ckpt.vocab, "It was", 80, seed=4, stop_at=stop) == "It was" + want


@pytest.mark.parametrize("chunks, stop, want", [
    (list("abcabd"), "abd", "abc"),
    (list("aaab"), "aab", "a"),  # a partial match that fails, then a match overlapping it
    (list("abab"), "abc", "abab"),  # held back to the end, then given back
    (["xy", "ab", "cz"], "bc", "xya"),  # chunks of several characters
    (list("stop"), "stop", ""),
])
def test_held_back_characters_come_out_in_order(chunks, stop, want):
    assert "".join(until(iter(chunks), stop)) == want


def test_stop_at_from_the_command_line_reads_escapes(run_dir, ckpt, capsys):
    full = sr.sample(ckpt.model, ckpt.vocab, "It was", 400, temperature=0.8, seed=3)
    assert "\n" in full[6:]
    assert main(["sample", str(run_dir), "--prime", "It was", "--length", "400", "--seed", "3",
                 "--stop-at", "\\n"]) == 0
    assert capsys.readouterr().out == full[:full.index("\n", 6)] + "\n"
    with pytest.warns(UserWarning, match="never writes"):  # the model has no tab
        want = sr.sample(ckpt.model, ckpt.vocab, "", 400, temperature=0.8, seed=3,
                         stop_at="\t\\")
    assert main(["sample", str(run_dir), "--length", "400", "--seed", "3", "--stop-at",
                 "\\t\\\\"]) == 0
    assert capsys.readouterr().out == want + "\n"


# ---------------------------------------------------------------------------- several samples

def test_num_samples_are_the_samples_of_seed_plus_i(ckpt):
    kw = dict(prime="It was", length=60, temperature=1.0)
    many = sr.sample(ckpt.model, ckpt.vocab, seed=5, num_samples=4, **kw)
    assert many == [sr.sample(ckpt.model, ckpt.vocab, seed=5 + i, **kw) for i in range(4)]
    assert len(set(many)) == 4
    assert sr.sample(ckpt.model, ckpt.vocab, seed=5, num_samples=1, **kw) == many[:1]
    fresh = sr.sample(ckpt.model, ckpt.vocab, seed=None, num_samples=3, **kw)
    assert len(fresh) == 3 and all(s.startswith("It was") and len(s) == 66 for s in fresh)
    stopped = sr.sample(ckpt.model, ckpt.vocab, seed=5, num_samples=4, stop_at=" ", **kw)
    assert stopped == [s[:s.index(" ", 6)] if " " in s[6:] else s for s in many]


def test_num_samples_on_the_command_line(run_dir, ckpt, capsys):
    assert main(["sample", str(run_dir), "--prime", "It was", "--length", "50", "--seed", "7",
                 "--num-samples", "3"]) == 0
    want = "".join(f"--- sample {i + 1} of 3 (seed {7 + i}) ---\n" +
                   sr.sample(ckpt.model, ckpt.vocab, "It was", 50, 0.8, seed=7 + i) + "\n"
                   for i in range(3))
    assert capsys.readouterr().out == want
    assert main(["sample", str(run_dir), "--length", "50", "--num-samples", "1"]) == 0
    assert capsys.readouterr().out == sr.sample(ckpt.model, ckpt.vocab, "", 50, 0.8) + "\n"


# ---------------------------------------------------------------------------- prompt files

def test_a_prompt_file_is_the_prompt_exactly(run_dir, tmp_path, capsys):
    prompt = tmp_path / "prompt.txt"
    text = "It was the best of times,\nit was the worst of times,\n"
    prompt.write_text(text)
    assert main(["sample", str(run_dir), "--prime-file", str(prompt), "--length", "80",
                 "--seed", "2"]) == 0
    from_file = capsys.readouterr().out
    assert main(["sample", str(run_dir), "--prime", text, "--length", "80", "--seed", "2"]) == 0
    assert capsys.readouterr().out == from_file and from_file.startswith(text)
    prompt.write_text("x" * 4000)  # the limit itself is allowed
    assert main(["sample", str(run_dir), "--prime-file", str(prompt), "--length", "5"]) == 0


def test_beam_on_the_command_line(run_dir, ckpt, capsys):
    assert main(["sample", str(run_dir), "--prime", "It was", "--length", "60", "--beam",
                 "3", "--stop-at", "\\n\\n"]) == 0
    want = sr.sample(ckpt.model, ckpt.vocab, "It was", 60, beam=3, stop_at="\n\n")
    assert capsys.readouterr().out == want + "\n"


@pytest.mark.parametrize("argv, words", [
    (["--beam", "3", "--temperature", "1"], "--beam and --temperature together"),
    (["--beam", "300"], "--beam must be between 1 and 256"),
    (["--num-samples", "0"], "--num-samples must be between 1 and 1,000"),
    (["--num-samples", "2", "--beam", "2"], "--num-samples and --beam together"),
    (["--num-samples", "1000", "--length", "100000"], "--num-samples 1,000 times --length"),
    (["--stop-at", ""], "--stop-at is empty"),
    (["--prime", "a", "--prime-file", "x"], "--prime and --prime-file both give a prompt"),
    (["--prime-file", ""], "--prime-file is empty"),
])
def test_refusals_name_the_flags(run_dir, argv, words, capsys):
    assert main(["sample", str(run_dir), *argv]) == 1
    assert words in capsys.readouterr().err


def test_the_help_says_what_beam_search_and_the_stop_text_do():
    sample = next(a for a in build_parser()._actions if a.dest == "command").choices["sample"]
    helps = {a.dest: a.help for a in sample._actions}
    assert "repetitive" in helps["beam"] and "variety" in helps["beam"]
    assert "not printed" in helps["stop_at"] and "seed --seed + i" in helps["num_samples"]
