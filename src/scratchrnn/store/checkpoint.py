"""Checkpoints: one NumPy `.npz` holding everything a run needs to continue bit for bit.

Members: `p/<key>` parameters, `opt/<key>` optimizer state, `state/<key>` the hidden state carried
into the next window, and `meta`, a JSON string (format version, model and training config,
vocabulary, step, data position, RNG state, metric history). Written atomically (uncompressed).

Read as untrusted input, in an order that never decompresses or allocates more than the declared
model needs: the zip's member list and declared sizes, then the metadata (at most META_BYTES)
checked against `schema.META`, then every member's declared size and .npy header against the
shape and dtype the metadata implies, and only then the data, without pickle. A hostile file is
refused in one line; a decompression bomb in milliseconds.
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from tokenize import TokenError

import numpy as np
from numpy.lib import format as npformat

from ..data.vocab import Vocab
from ..errors import ScratchRNNError
from ..fsutil import atomic_write, open_regular
from ..nn.model import CharRNN
from ..nn.optim import averaged
from ..safejson import dumps as json_dumps
from . import schema

FORMAT_VERSION = 1
META_BYTES = 64 << 20  # the metadata's cap: ~100k metric rows, far beyond a long run's
NPY_HEADER_MAX = 12 + 65535  # magic, version, length and a version 1.0 header at most
BOMB_BYTES, BOMB_RATIO = 1 << 20, 100  # a larger member may not inflate more than 100x
CHUNK_BYTES = 8 << 20
CHECKPOINT_HINT = "pass a checkpoint written by 'scratchrnn train'"
_KEY = r"(l\d{1,4}\.(W_x|W_h|b|b_hn|ln_x|ln_h)|W_y|b_y)"
MEMBER = re.compile(rf"meta|p/{_KEY}|opt/(t|(m|v|G|ema)\.{_KEY})|state/l\d{{1,4}}\.[hc]")


@dataclass
class Checkpoint:
    """`model` is the one to sample and evaluate: the weight average of a run trained with
    --ema, else the trained weights. `trained` holds the trained weights, which a resumed run
    goes on from (the same object as `model` without an average)."""

    model: CharRNN
    vocab: Vocab
    config: dict  # the training configuration (TrainConfig fields)
    meta: dict = field(default_factory=dict)  # step, epoch, window, rng, history, ...
    opt_state: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)
    path: Path | None = None
    trained: CharRNN | None = None  # None: the same as model

    def __post_init__(self):
        self.trained = self.trained or self.model


def usable_model(model: CharRNN, opt_state: dict) -> CharRNN:
    """The weights to evaluate and sample: their moving average when the run keeps one
    (`optim.average`), else the model itself."""
    avg = averaged(model.params, opt_state)
    return model if avg is None else CharRNN.from_params(model.config, avg)


def save_checkpoint(path, model: CharRNN, vocab: Vocab, config: dict, meta: dict | None = None,
                    opt_state: dict | None = None, state: dict | None = None) -> Path:
    path = Path(path)
    full_meta = dict(meta or {}, format_version=FORMAT_VERSION, model=model.config.to_dict(),
                     config=config, vocab=vocab.chars)
    if vocab.kind != "chars":  # a checkpoint without it (any older one) holds characters
        full_meta["vocab_kind"] = vocab.kind
    arrays = {"meta": np.array(json_dumps(full_meta))}
    arrays.update({f"p/{k}": v for k, v in model.params.items()})
    arrays.update({f"opt/{k}": v for k, v in (opt_state or {}).items()})
    arrays.update({f"state/{k}": v for k, v in (state or {}).items()})
    atomic_write(path, lambda f: np.savez(f, **arrays), "checkpoint")
    return path


def resolve(path) -> Path:
    """A run folder means its latest checkpoint."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.npz"
    if not path.exists():
        raise ScratchRNNError(f"no checkpoint at {path}; pass a run folder or a .npz file "
                              "written by 'scratchrnn train'")
    return path


def _bad(path, why: str) -> ScratchRNNError:
    return ScratchRNNError(f"{path} is not a usable scratchrnn checkpoint ({why}); "
                           f"{CHECKPOINT_HINT}")


def load_checkpoint(path, resume: bool = False) -> Checkpoint:
    """Read a checkpoint, checking everything before it is trusted: the zip's member list and
    declared sizes first, then the metadata (bounded) against `schema.META`, then each
    member's .npy header against the shape and dtype the metadata implies, and only then its
    data. `resume=True` also requires the training state a resumed run goes on from."""
    path = resolve(path)
    try:
        with open_regular(path, "checkpoint", CHECKPOINT_HINT) as f, zipfile.ZipFile(f) as zf:
            meta, m, members = _read(zf, resume)
    except schema.Invalid as e:
        raise _bad(path, str(e)) from None
    except _OtherFormat as e:
        raise ScratchRNNError(f"{path} has checkpoint format {e.args[0]}, this scratchrnn "
                              f"reads format {FORMAT_VERSION}; use the scratchrnn version that "
                              "wrote it") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, RuntimeError) as e:
        raise _bad(path, f"cannot read it: {type(e).__name__}: {str(e)[:80]}") from None
    params = {k[2:]: v for k, v in members.items() if k.startswith("p/")}
    opt = {k[4:]: v for k, v in members.items() if k.startswith("opt/")}
    state = {k[6:]: v for k, v in members.items() if k.startswith("state/")}
    trained = CharRNN.from_params(m.model, params)
    return Checkpoint(usable_model(trained, opt), m.vocab, meta["config"], meta, opt, state,
                      path, trained)


def _read(zf: zipfile.ZipFile, resume: bool):
    infos = _entries(zf)
    if "meta" not in infos:
        raise schema.Invalid("no metadata")
    meta = _parse_meta(_read_npy(zf, infos["meta"], "meta", None))
    version = meta.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # before the rest: it may differ
        raise _OtherFormat(schema.show(version))
    m = schema.validate_meta(meta)
    specs = schema.member_specs(m)
    for name in infos:  # every size is checked before any array's data is decompressed
        if name != "meta":
            _check_declared(infos[name], name, specs)
    missing = [n for n in specs if n.startswith("p/") and n not in infos]
    if missing:
        raise schema.Invalid(f"parameter {missing[0][2:]} is missing")
    schema.groups_complete(infos, specs, resume)
    need = sum(math.prod(specs[n][0]) * specs[n][1].itemsize for n in infos if n != "meta")
    if need > _memory():
        raise schema.Invalid(f"its arrays need {need / 2**30:.1f} GiB, more than this machine's "
                             f"{_memory() / 2**30:.1f} GiB of memory")
    members = {n: _read_npy(zf, infos[n], n, specs[n]) for n in infos if n != "meta"}
    check_values(members, meta)
    return meta, m, members


def _entries(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The members by name, from the zip's central directory alone."""
    infos = {}
    for info in zf.infolist():
        name = info.filename[:-4] if info.filename.endswith(".npy") else None
        if name is None or not MEMBER.fullmatch(name):
            raise schema.Invalid(f"unexpected member {info.filename[:60]!r}")
        if name in infos:
            raise schema.Invalid(f"member {name} appears twice")
        if problem := zip_member_problem(info):
            raise schema.Invalid(f"member {name} {problem}")
        infos[name] = info
    return infos


def zip_member_problem(info: zipfile.ZipInfo) -> str | None:
    """What makes a zip member unreadable, from the central directory alone (a checkpoint's
    and an imported .pt's alike): encryption or an unusual method, or two sizes for a stored
    member."""
    if info.flag_bits & 1 or info.compress_type not in (zipfile.ZIP_STORED,
                                                        zipfile.ZIP_DEFLATED):
        return "is encrypted or compressed with an unusual method"
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        return "declares two different sizes"
    return None


def inflation_problem(info: zipfile.ZipInfo) -> str | None:
    """A member that would inflate like a decompression bomb, from its declared sizes."""
    if info.file_size > BOMB_BYTES and info.file_size > BOMB_RATIO * info.compress_size:
        return (f"would inflate {info.compress_size:,} bytes to {info.file_size:,}, as a "
                "decompression bomb does")
    return None


def _check_declared(info: zipfile.ZipInfo, name: str, specs) -> None:
    """The declared (uncompressed) size must be what the model needs, within an .npy header;
    and a member may not inflate like a decompression bomb even where the declared model is
    itself huge (scratchrnn writes its checkpoints uncompressed)."""
    if name not in specs:
        raise schema.Invalid(f"member {name} does not belong to this model")
    shape, dtype = specs[name]
    nbytes = math.prod(shape) * dtype.itemsize
    if not nbytes + 10 <= info.file_size <= nbytes + NPY_HEADER_MAX:
        raise schema.Invalid(f"member {name} declares {info.file_size:,} bytes, the model needs "
                             f"{nbytes:,} plus a header")
    if problem := inflation_problem(info):
        raise schema.Invalid(f"member {name} {problem}")


def _read_npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, spec) -> np.ndarray:
    """One .npy member: its header checked against `spec` (shape, dtype), or for the metadata
    a bounded string, before its data is read into an array of our own (never pickle)."""
    if spec is None and info.file_size > META_BYTES:
        raise schema.Invalid(f"its metadata declares {info.file_size:,} bytes, more than "
                             f"{META_BYTES:,}")
    with zf.open(info) as f:
        try:
            version = npformat.read_magic(f)
            read_header = {(1, 0): npformat.read_array_header_1_0,
                           (2, 0): npformat.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"format {version}")
            shape, fortran, dtype = read_header(f)
        except (ValueError, SyntaxError, TokenError, RecursionError, TypeError) as e:
            # numpy parses the header as a Python literal, and tokenizes it when that fails
            raise schema.Invalid(f"member {name} has no readable array header "
                                 f"({str(e)[:60]})") from None
        if dtype.hasobject:
            raise schema.Invalid(f"member {name} holds Python objects")
        if spec is None:  # the metadata: one JSON string
            if shape != () or dtype.kind != "U":
                raise schema.Invalid("the metadata is not a string")
        elif shape != spec[0] or dtype != spec[1]:
            what = "parameter " + name[2:] if name.startswith("p/") else "member " + name
            raise schema.Invalid(f"{what} is {dtype}{list(shape)}, expected "
                                 f"{spec[1]}{list(spec[0])}")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != f.tell() + nbytes:
            raise schema.Invalid(f"member {name} is {info.file_size:,} bytes, its header says "
                                 f"{f.tell() + nbytes:,}")
        arr = np.empty(shape[::-1] if fortran else shape, dtype)
        flat = memoryview(arr.reshape(-1).view(np.uint8))  # (nbytes,) the array's own bytes
        done = 0
        while done < nbytes:  # in chunks: no second copy of a large member
            chunk = f.read(min(CHUNK_BYTES, nbytes - done))
            if not chunk:
                raise schema.Invalid(f"member {name} is cut short")
            flat[done:done + len(chunk)] = chunk
            done += len(chunk)
    return np.ascontiguousarray(arr.T) if fortran else arr


class _OtherFormat(Exception):
    """The metadata names another format version (args[0]): its other keys are not ours."""


def _parse_meta(arr: np.ndarray) -> dict:
    try:  # decoded here: numpy's own str() fails with SystemError on invalid code points
        meta = json.loads(arr.astype(arr.dtype.newbyteorder("<")).tobytes()
                          .decode("utf-32-le").rstrip("\0"))
    except RecursionError:
        raise schema.Invalid("unreadable metadata: nested too deeply") from None
    except ValueError as e:  # also: numbers of over 4300 digits
        raise schema.Invalid(f"unreadable metadata: {str(e)[:60]}") from None
    if not isinstance(meta, dict):
        raise schema.Invalid("unreadable metadata")
    return meta


def check_values(members: dict, meta: dict) -> None:
    """Values the arithmetic relies on: finite floats, non-negative second moments, and an
    update count within the steps taken."""
    for name, arr in members.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise schema.Invalid(f"member {name} holds NaN or infinite values")
        if name.startswith(("opt/v.", "opt/G.")) and (arr < 0).any():
            raise schema.Invalid(f"member {name} holds negative second moments")
    if "opt/t" in members:
        t = int(members["opt/t"])
        if not 0 <= t <= meta.get("step", schema.MAX_STEPS):
            raise schema.Invalid(f"optimizer step count {t} is not in [0, step]")


def _memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62
