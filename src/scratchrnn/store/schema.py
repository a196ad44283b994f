"""What a checkpoint may hold: the metadata schema (one table, key -> check) and the shape and
dtype of every array member, both derived from the metadata before any array is read.

A hostile or damaged file must be refused here, in one line, rather than raise a traceback
later in load, eval, sample or resume: every value the rest of the package reads from a
checkpoint is checked for its type and range, and cross-checked against the others (vocabulary
against model, model against config, hidden state against the batch). To accept a new key,
add a row to META; TrainConfig fields are checked against their annotations automatically.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing

import numpy as np

from .. import limits
from ..data.text import SURROGATES
from ..data.vocab import KINDS, Vocab
from ..errors import ScratchRNNError
from ..nn import cells
from ..nn.model import DTYPES, RECURRENT_INITS, ModelConfig, param_shapes
from ..nn.optim import SLOTS
from .config import AUTO_CHOOSES, MODEL_OPTIONS, TrainConfig

INT64_MAX = 2**63 - 1
MAX_STEPS = 2**53  # counters stay exact as floats (progress bars, metrics)
MAX_HISTORY = 10**7  # metric rows (the metadata's byte cap bounds them first)


class Invalid(Exception):
    """A value a scratchrnn checkpoint cannot hold; the message says which and why."""


def show(v) -> str:
    if isinstance(v, dict | list):  # repr of a deeply nested value would itself recurse
        return f"a {'dict' if isinstance(v, dict) else 'list'} of {len(v)}"
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# Checks: check(value, where) raises Invalid or returns None.

def integer(lo=0, hi=INT64_MAX):
    def check(v, where):
        if not (_is_int(v) and lo <= v <= hi):
            raise Invalid(f"{where} must be a whole number in [{lo}, {hi}], not {show(v)}")
    return check


def number(lo=-math.inf, finite=True):
    def check(v, where):
        if not _is_num(v) or (finite and not math.isfinite(v)) or v < lo:
            need = "a finite number" if finite else "a number"
            raise Invalid(f"{where} must be {need}{f' >= {lo}' if lo > -math.inf else ''}, "
                          f"not {show(v)}")
    return check


def optional(check):
    def opt(v, where):
        if v is not None:
            check(v, where)
    return opt


def text(v, where):
    """A string that can name a file: no NUL, no lone surrogate (JSON's "\\ud800")."""
    if isinstance(v, str) and "\0" not in v:
        try:
            os.fsencode(v)
            return
        except UnicodeEncodeError:
            pass
    raise Invalid(f"{where} must be a string that can name a file, not {show(v)}")


def paths(v, where):
    """--text as saved: one path, or several (a corpus of many files)."""
    if isinstance(v, list):
        return list_of(text, MAX_HISTORY)(v, where)
    return text(v, where)


def sha256(v, where):
    if not (isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)):
        raise Invalid(f"{where} must be 64 lowercase hex digits, not {show(v)}")


def record(table: dict, optional_keys=()):
    """A dict with exactly the keys of `table` (those in `optional_keys` may be missing)."""
    def check(v, where):
        if not isinstance(v, dict):
            raise Invalid(f"{where} must be a dict, not {show(v)}")
        unknown = set(v) - set(table)
        if unknown:
            raise Invalid(f"{where} has an unknown key {show(sorted(unknown)[0])}")
        for key, sub in table.items():
            if key in v:
                sub(v[key], f"{where}.{key}")
            elif key not in optional_keys:
                raise Invalid(f"{where} lacks {key!r}")
    return check


def list_of(item, max_len):
    def check(v, where):
        if not isinstance(v, list) or len(v) > max_len:
            raise Invalid(f"{where} must be a list of at most {max_len} items, not {show(v)}")
        for i, x in enumerate(v):
            item(x, f"{where}[{i}]")
    return check


def pair(first, second):
    def check(v, where):
        if not (isinstance(v, list) and len(v) == 2):
            raise Invalid(f"{where} must be a pair, not {show(v)}")
        first(v[0], f"{where}[0]")
        second(v[1], f"{where}[1]")
    return check


def history_row(v, where):
    """A metrics row: numbers (or null) by name, with its step; plots and metrics.jsonl
    are drawn from them on resume."""
    if not isinstance(v, dict) or len(v) > 64:
        raise Invalid(f"{where} must be a dict of metrics, not {show(v)}")
    integer(0, MAX_STEPS)(v.get("step"), f"{where}.step")
    for key, x in v.items():
        if x is not None and not _is_num(x):
            raise Invalid(f"{where}.{key} must be a number or null, not {show(x)}")


def pcg64_state(v, where):
    """The dropout generator's state (numpy's PCG64), which a resumed run restores."""
    u128 = integer(0, 2**128 - 1)
    record({"bit_generator": lambda x, w: None if x == "PCG64" else _raise(w, "'PCG64'", x),
            "state": record({"state": u128, "inc": u128}),
            "has_uint32": integer(0, 1), "uinteger": integer(0, 2**32 - 1)})(v, where)
    try:
        np.random.Generator(np.random.PCG64()).bit_generator.state = v
    except (ValueError, TypeError, OverflowError, KeyError) as e:
        raise Invalid(f"{where} is not a PCG64 state: {e}") from None


def _raise(where, want, got):
    raise Invalid(f"{where} must be {want}, not {show(got)}")


def choice(*allowed):
    def check(v, where):
        if not isinstance(v, str) or v not in allowed:
            _raise(where, " or ".join(map(repr, allowed)), v)
    return check


def model_config(v, where):
    record(MODEL_CHECKS, optional_keys=tuple(MODEL_OPTIONS))(v, where)  # the options came
    # later than vocab_size: a checkpoint without one has the default


def boolean(v, where):
    if not isinstance(v, bool):
        _raise(where, "true or false", v)


def vocab_chars(v, where):
    if not isinstance(v, str):
        _raise(where, "a string of characters", v)
    if not 1 <= len(v) <= limits.MAX_SYMBOLS:
        raise Invalid(f"{where} has {len(v):,} characters; a vocabulary has 1 to "
                      f"{limits.MAX_SYMBOLS:,}")
    if SURROGATES.search(v):
        raise Invalid(f"{where} is not valid Unicode (it holds half a surrogate pair)")


def field_check(hint):
    """A check from a TrainConfig annotation (int, float, str, bool, ... maybe | None): the
    type, and for numbers and strings what `validate` cannot see (size, NUL, encodability)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    checks = {int: integer(-INT64_MAX, INT64_MAX), float: number(finite=False), str: text}

    def accepts(t, v):
        if t is float:  # JSON writes 2.0 as 2.0, but a hand-edited config may say 2
            return _is_num(v)
        if t is int:
            return _is_int(v)
        origin = typing.get_origin(t) or t
        return isinstance(origin, type) and isinstance(v, origin)

    def check(v, where):
        for t in allowed:
            if accepts(t, v):
                return checks.get(t, lambda v, where: None)(v, where)
        names = " or ".join("null" if t is type(None) else getattr(t, "__name__", str(t))
                            for t in allowed)
        _raise(where, names, v)
    return check


CONFIG_FIELDS = {name: field_check(hint)
                 for name, hint in typing.get_type_hints(TrainConfig).items()}
# A model option is typed by its annotation, and its range checked by ModelConfig itself; what
# a checkpoint must bound beyond that (sizes to allocate, names to look up) is said here.
def option_check(hint):
    """A model option's check from its annotation: each float option is a probability or a
    scale (0 or more) and each switch is true or false, as the checkpoint's JSON says them."""
    return {bool: boolean, float: number(0), float | None: optional(number(0))}.get(
        hint, field_check(hint))


MODEL_CHECKS = {**{name: option_check(hint)
                   for name, hint in typing.get_type_hints(ModelConfig).items()},
                "vocab_size": integer(1, limits.MAX_SYMBOLS),  # two-byte ids at most
                "hidden_size": integer(1, limits.MAX_HIDDEN),
                "num_layers": integer(1, limits.MAX_LAYERS),
                "cell": choice(*cells.GATES), "dtype": choice(*DTYPES),
                "recurrent_init": choice(*RECURRENT_INITS)}


def chosen_options(v, where):
    """The options `auto` chose, by name, each checked as the saved configuration's."""
    if not isinstance(v, dict):
        _raise(where, "a dict", v)
    for key, value in v.items():
        if key not in AUTO_CHOOSES:
            raise Invalid(f"{where} has an unknown key {show(key)}")
        CONFIG_FIELDS[key](value, f"{where}.{key}")
    try:
        TrainConfig(**v)  # in range, as the command line's would be
    except (ScratchRNNError, TypeError, ValueError) as e:
        raise Invalid(f"{where}: {e}") from None


def train_config(v, where):
    """The saved TrainConfig: known fields typed as annotated (unknown ones are ignored, as
    TrainConfig.from_dict does), then the ranges `validate` checks for the command line."""
    if not isinstance(v, dict):
        _raise(where, "a dict", v)
    for key, check in CONFIG_FIELDS.items():
        if key in v:
            check(v[key], f"{where}.{key}")
    given = {f.name: f.default for f in dataclasses.fields(TrainConfig)} | v
    integer(0)(given["seed"], f"{where}.seed")
    vf, tf = given["val_frac"], given["test_frac"]
    if not (0 <= vf < 1 and 0 <= tf < 1 and vf + tf < 1):
        raise Invalid(f"{where}: val_frac and test_frac must be in [0, 1) and sum to less than 1")
    try:
        TrainConfig.from_dict(v)  # made, it is validated as the command line's would be
    except (ScratchRNNError, TypeError, ValueError) as e:
        raise Invalid(f"{where}: {e}") from None


# The metadata: key -> (required, check). Keys written only by training are optional: a
# checkpoint saved through the Python API without them still samples and evaluates.
META = {
    "format_version": (True, integer(1)),
    "model": (True, model_config),
    "vocab": (True, vocab_chars),
    "vocab_kind": (False, choice(*KINDS)),
    "vocab_counts": (False, list_of(integer(0), limits.MAX_SYMBOLS)),  # in the training text
    "config": (True, train_config),
    "step": (False, integer(0, MAX_STEPS)),
    "epoch": (False, integer(0, MAX_STEPS)),
    "window": (False, integer(0, MAX_STEPS)),
    "rng": (False, pcg64_state),
    "elapsed_s": (False, number(0)),
    "history": (False, list_of(history_row, MAX_HISTORY)),
    "best_val": (False, optional(number(finite=False))),
    "acc": (False, pair(number(), integer(0, MAX_STEPS))),
    "corpus": (False, record({"chars": integer(0), "sha256": sha256, "path": optional(paths)})),
    "imported_from": (False, text),  # scratchrnn import: the state dict it was made from
    "auto": (False, optional(record({  # what `auto` chose for the run, and from what
        "budget_s": number(0), "train_symbols": integer(0),
        "timed": list_of(pair(integer(1, limits.MAX_LAYERS), number(0)), 8),
        "validation_s": number(0), "settings": chosen_options,
        "steps": integer(0), "epochs": number(0), "why": text, "trigram": optional(number(0)),
        "expected": optional(list_of(number(), 3))}))),
}



@dataclasses.dataclass
class Meta:
    model: ModelConfig
    vocab: Vocab
    config: TrainConfig


def validate_meta(meta) -> Meta:
    """Check the parsed metadata against META and its parts against each other."""
    if not isinstance(meta, dict):
        _raise("the metadata", "a JSON object", meta)
    unknown = set(meta) - set(META)
    if unknown:
        raise Invalid(f"unknown metadata key {show(sorted(unknown)[0])}")
    for key, (required, check) in META.items():
        if key in meta:
            check(meta[key], key)
        elif required:
            raise Invalid(f"the metadata lacks {key!r}")
    try:
        model = ModelConfig(**meta["model"])
        vocab = Vocab(meta["vocab"], meta.get("vocab_kind", "chars"))
    except ScratchRNNError as e:
        raise Invalid(f"bad model config or vocabulary: {e}") from None
    if len(vocab) != model.vocab_size:
        raise Invalid(f"vocabulary has {len(vocab)} characters, model expects "
                      f"{model.vocab_size}")
    if len(meta.get("vocab_counts", vocab.chars)) != len(vocab):
        raise Invalid(f"vocab_counts has {len(meta['vocab_counts'])} counts for "
                      f"{len(vocab)} characters")
    for mkey, ckey in MODEL_OPTIONS.items():  # the model a config was built into
        if ckey in meta["config"] and meta["config"][ckey] != getattr(model, mkey):
            raise Invalid(f"config.{ckey} is {show(meta['config'][ckey])} but the model's "
                          f"{mkey} is {show(getattr(model, mkey))}")
    return Meta(model, vocab, TrainConfig.from_dict(meta["config"]))


def member_specs(m: Meta) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Every array member the metadata allows, by name: (shape, dtype)."""
    dtype = np.dtype(m.model.dtype)
    shapes = param_shapes(m.model)
    specs = {f"p/{k}": (s, dtype) for k, s in shapes.items()}
    specs["opt/t"] = ((), np.dtype(np.int64))
    for slot in (*SLOTS.get(m.config.optimizer, ()), "ema"):
        specs.update({f"opt/{slot}.{k}": (s, dtype) for k, s in shapes.items()})
    state = (m.config.batch, m.model.hidden_size)  # (B, H): a resumed run goes on with it
    for k in range(m.model.num_layers):
        specs[f"state/l{k}.h"] = (state, dtype)
        if m.model.cell == "lstm":
            specs[f"state/l{k}.c"] = (state, dtype)
    return specs


def groups_complete(names, specs, resume: bool) -> None:
    """Optimizer slots, the weight average and the hidden state come whole or not at all;
    a resumed run needs all of them (the average only where the run keeps one)."""
    for prefix in ("opt/m.", "opt/v.", "opt/G.", "opt/ema.", "state/"):
        want = {n for n in specs if n.startswith(prefix)}
        have = want & set(names)
        need = resume and prefix != "opt/ema."
        if have and have != want or (need and want and not have):
            missing = sorted(want - have)[0]
            raise Invalid(f"member {missing} is missing"
                          + ("" if have else "; it can be sampled and evaluated, not resumed"))
    if resume and "opt/t" not in names:
        raise Invalid("it holds no optimizer state; it can be sampled and evaluated, not "
                      "resumed")
