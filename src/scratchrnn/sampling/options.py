"""The options around a draw (issue 31): a stop text, several samples from one prompt, beam
search's width and what it cannot take, and a prompt read from a file. Each check names the
API's parameter in backticks; `most` is the caller's bound on model steps (the server's is
lower than a call's)."""

from __future__ import annotations

from collections.abc import Iterator

from .. import limits
from ..data.vocab import check_unicode
from ..errors import ScratchRNNError
from ..fsutil import open_regular
from ..limits import MAX_BEAM, MAX_PROMPT, MAX_SAMPLES, MAX_STOP


def check_options(length: int, temperature, top_k, top_p, argmax, stop_at: str | None,
                  beam: int | None, most: int = limits.MAX_SAMPLE_LENGTH) -> None:
    """`stop_at` and `beam`, and what beam search cannot take: it draws nothing, so the
    options that shape a draw do not apply to it (given, they would be ignored in silence).
    `most`: the model steps one call may take (a beam takes `beam` per character)."""
    if stop_at is not None:
        if not isinstance(stop_at, str):
            raise ScratchRNNError(f"`stop_at` must be a string, got {type(stop_at).__name__}")
        if not stop_at:
            raise ScratchRNNError("`stop_at` is empty; give the text that ends a sample, such as "
                                  "a blank line, or leave it out")
        check_unicode(stop_at, "`stop_at`")  # no sample holds one: it would never stop
        if len(stop_at) > MAX_STOP:
            raise ScratchRNNError(f"`stop_at` has {len(stop_at):,} characters; the most is "
                                  f"{MAX_STOP}; give a shorter one")
    if beam is None:
        return
    limits.integer(beam, "beam", 1, MAX_BEAM)
    given = {"temperature": temperature is not None, "top_k": top_k is not None,
             "top_p": top_p is not None, "argmax": argmax is not False}
    name = next((n for n, g in given.items() if g), None)
    if name:
        raise ScratchRNNError(f"`beam` and `{name}` together: beam search keeps the likeliest "
                              f"texts and draws nothing, so `{name}` does not apply; drop one")
    _at_most(beam, "beam", length, most, "model steps", "take", "a narrower beam")


def check_samples(num_samples: int | None, length: int, beam: int | None,
                  most: int = limits.MAX_SAMPLE_LENGTH) -> None:
    """`num_samples`: their characters together are bounded as one sample's are."""
    if num_samples is None:
        return
    limits.integer(num_samples, "num_samples", 1, MAX_SAMPLES)
    if beam is not None:
        raise ScratchRNNError("`num_samples` and `beam` together: beam search finds one text, "
                              "the same every time; drop one")
    _at_most(num_samples, "num_samples", length, most, "characters", "generate", "fewer samples")


def _at_most(n: int, name: str, length: int, most: int, unit: str, verb: str, fix: str):
    limits.integer(length, "length", 0, limits.MAX_SAMPLE_LENGTH)
    if n * length > most:
        raise ScratchRNNError(f"`{name}` {n:,} times `length` {length:,} is {n * length:,} "
                              f"{unit}, more than the {most:,} one call may {verb}; ask for "
                              f"{fix} or a shorter `length`")


def seeds(seed: int | None, num_samples: int) -> list[int | None]:
    """Sample i's seed: `seed` + i, so that sample i is what `seed` + i gives alone; None: each
    sample draws fresh entropy from the operating system."""
    limits.integer(seed, "seed", 0, none_ok=True)
    return [None if seed is None else int(seed) + i for i in range(num_samples)]


def read_prompt(path) -> str:
    """A prompt file's text, exactly (a final line break too), as UTF-8; a byte order mark
    (Notepad writes one) is no text, as the corpus reader (text.decode) has it."""
    hint = f"pass a UTF-8 text file of at most {MAX_PROMPT:,} characters"
    with open_regular(path, "prompt file", hint, 4 * MAX_PROMPT + 3) as f:  # 4 bytes each, BOM
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScratchRNNError(f"the prompt file {path} is not UTF-8 text (byte {e.start:,} "
                              f"cannot be read); {hint}") from None
    text = text.removeprefix("\ufeff")
    if not text:
        raise ScratchRNNError(f"the prompt file {path} is empty; {hint}")
    if len(text) > MAX_PROMPT:
        raise ScratchRNNError(f"the prompt file {path} has {len(text):,} characters; the most "
                              f"is {MAX_PROMPT:,}: keep the end that is to be continued")
    return text


def until(chars: Iterator[str], stop_at: str) -> Iterator[str]:
    """`chars` up to where `stop_at` first appears, without it. Characters that may begin it
    are held back until the next ones show whether they do."""
    held = ""
    for ch in chars:
        held += ch
        cut = held.find(stop_at)
        if cut >= 0:
            yield from held[:cut]
            return  # and the generator upstream makes no more characters
        keep = next((k for k in range(min(len(held), len(stop_at) - 1), 0, -1)
                     if held.endswith(stop_at[:k])), 0) if held[-1:] in stop_at else 0
        yield from held[:len(held) - keep]
        held = held[len(held) - keep:]
    yield from held
