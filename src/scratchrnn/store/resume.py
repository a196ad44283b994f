"""Resume knows its data: a checkpoint records its corpus (characters, a SHA-256 of the encoded
ids of the whole cleaned text, and the absolute path), and a resumed run checks that the text it
finds has the same content, wherever the file now is, before it trains on."""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..data.corpus import Corpus, load_corpus
from ..data.sources import absolute, is_glob
from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from .config import TrainConfig
from .owner import corpus_cache, run_reuse

HASH_CHUNK = 1 << 24  # ids hashed at a time: a memory-mapped corpus is never read whole


def corpus_identity(corpus: Corpus, text: str | os.PathLike | None) -> dict:
    """{"chars", "sha256", "path"} of the whole cleaned corpus (train + val + test, in order)."""
    h, n = hashlib.sha256(), 0
    for part in (corpus.train, corpus.val, corpus.test):  # each (N_part,) uint8 or uint16
        for start in range(0, len(part), HASH_CHUNK):
            chunk = np.ascontiguousarray(part[start:start + HASH_CHUNK])
            h.update(chunk)
            n += len(chunk)
    return {"chars": n, "sha256": h.hexdigest(),
            "path": absolute(text)}


def vocab_arg(name, vocab: Vocab) -> str | Vocab:
    """What to pass load_corpus to encode a run's text with its vocabulary `vocab`: the saved
    name when it is a fixed vocabulary with exactly these characters (so a prepared corpus
    training cached under that name is reused, not prepared again), else the vocabulary."""
    if name in ("ascii", "seed", "bytes") and Vocab.named(name) == vocab:
        return name
    return vocab


def saved_identity(meta: dict) -> dict | None:
    """The corpus a checkpoint recorded, or None for a run saved before it recorded one."""
    saved = meta.get("corpus")
    if (isinstance(saved, dict) and isinstance(saved.get("chars"), int)
            and isinstance(saved.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", saved["sha256"])
            and (saved.get("path") is None or isinstance(saved["path"], str | list))):
        return saved
    return None


def resume_text(meta: dict, config: dict, text: str | os.PathLike | None) -> str | None:
    """The text a resumed run reads: `text` if the user names one (compared by content later),
    else the absolute path the checkpoint recorded (an older run: its config's --text, which
    may be relative to where it started). None means the book."""
    if text is not None:
        return absolute(text)
    saved = saved_identity(meta)
    path = saved["path"] if saved else config.get("text")
    if path is None:
        return None
    if isinstance(path, list) or is_glob(path):  # several files: load_corpus names a missing one
        return absolute(path)
    if not Path(path).exists():
        where = "" if Path(path).is_absolute() else " (relative to where the run started)"
        raise ScratchRNNError(f"the run's text {path}{where} is not there any more; pass "
                              "`text` FILE with the same text to continue the run")
    return os.path.abspath(path)


def check_same_text(meta: dict, now: dict, allow_new_text: bool = False) -> bool:
    """Refuse a text whose content changed since the run started, unless `allow_new_text`.
    Returns True when the run goes on over a new text (so its data position starts afresh)."""
    saved = saved_identity(meta)
    if saved is None:
        why = ("was imported and records no text" if "imported_from" in meta else
               "was saved before scratchrnn recorded its text")
        warnings.warn(f"this run {why}; resuming without checking that the text is "
                      "unchanged", stacklevel=3)
        return False
    if saved["chars"] == now["chars"] and saved["sha256"] == now["sha256"]:
        return False
    if allow_new_text:
        return True
    where = now["path"] or "the book"
    sizes = f"{now['chars']:,} characters, the run's had {saved['chars']:,}"
    what = (f"the text {where} changed since the run started" if now["path"] == saved["path"]
            else f"{where} is not the text this run was trained on")
    raise ScratchRNNError(f"{what} ({sizes}, other content); pass `text` with the original "
                          "text, or add `allow_new_text` to continue training on the new text")


def run_text(ckpt):
    """The text a read-only command reads as a run's own: the absolute path its checkpoint
    recorded (a run from before that: its config's --text), None for the book. An imported run
    recorded none: it is refused rather than scored on the book it never read."""

    saved = saved_identity(ckpt.meta)
    path = saved["path"] if saved else TrainConfig.from_dict(ckpt.config).text
    if path is None and saved is None and "imported_from" in ckpt.meta:
        raise ScratchRNNError(f"{ckpt.path} was imported and records no text; pass `text` FILE")
    if isinstance(path, str) and not is_glob(path) and not Path(path).exists():
        raise ScratchRNNError(f"the run's text {path} is not there any more; pass `text` FILE")
    return path


def run_corpus(ckpt, text=None, whole: bool = False) -> Corpus:
    """The corpus a read-only command reads for a checkpoint: `text` (a file, folder, glob or
    several) or the run's own (`run_text`; refused when its content is no longer what the run
    recorded, since its splits would then be other text), encoded with the run's vocabulary and
    encoding, split as the run was (`whole`: all of it in `train`). A large corpus is read where
    training prepared it, or prepared in a cache of its own (owner.corpus_cache), never beside
    the checkpoint."""

    cfg = TrainConfig.from_dict(ckpt.config)
    vocab = vocab_arg(cfg.vocab, ckpt.vocab)
    source = run_text(ckpt) if text is None else text
    fracs = (0.0, 0.0) if whole else (cfg.val_frac, cfg.test_frac)
    corpus = load_corpus(source, vocab, *fracs, encoding=cfg.encoding,
                         cache=corpus_cache(source, vocab, cfg.encoding),
                         reuse=run_reuse(ckpt.path.parent) if text is None else None)
    saved = saved_identity(ckpt.meta)
    if text is None and saved is not None:
        now = corpus_identity(corpus, source)
        if (now["chars"], now["sha256"]) != (saved["chars"], saved["sha256"]):
            raise ScratchRNNError(
                f"the run's text {source or 'the book'} changed since the run was trained "
                f"({now['chars']:,} characters, the run's had {saved['chars']:,}), so its "
                "splits are not the ones the run held out; pass `text` FILE to read a text as "
                "it is now")
    return corpus
