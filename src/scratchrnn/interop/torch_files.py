"""Reading PyTorch files (safetensors, parsed here; .pt through torch.load) with every
size, dtype and expansion checked before anything is read or allocated."""

from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .. import limits
from ..errors import ScratchRNNError
from ..fsutil import open_regular
from ..store import schema
from ..store.checkpoint import BOMB_BYTES, inflation_problem, zip_member_problem

# A model of the most layers scratchrnn allows has 4 * 1000 + 4 tensors (in a .pt, a storage
# each); their names, shapes and offsets take about 0.4 MB of safetensors header or pickle. The
# caps bound the time and memory of parsing either (its objects take up to 20 times the text).
MAX_TENSORS = 4 * limits.MAX_LAYERS + 4
HEADER_BYTES = 4 << 20
PICKLE_BYTES = 1 << 20
MAX_DIMS = 8
# The dtypes a weight may have: real floating point. Anything else (integers, bool, complex,
# float8, quantised) is no weight scratchrnn could compute with as PyTorch does.
SAFETENSORS_FLOATS = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}
TORCH_FLOATS = ("float16", "float32", "float64", "bfloat16")
FLOATS = "float16, float32, float64 or bfloat16"


def bad(path, why: str) -> ScratchRNNError:
    return ScratchRNNError(f"cannot import {path}: {why}")


def keystr(name) -> str:
    """A tensor name as the file spells it, safe to print on one line."""
    return name if isinstance(name, str) and name.isprintable() and len(name) <= 80 \
        else schema.show(name)


def not_float(path, name, dtype) -> ScratchRNNError:
    return bad(path, f"tensor {keystr(name)} is {dtype}, not real floating point ({FLOATS}); "
                "save the weights as float32")


def _too_many(path, n: int) -> ScratchRNNError:
    return bad(path, f"it holds {n:,} tensors, more than a model of {limits.MAX_LAYERS} "
                f"layers has ({MAX_TENSORS:,})")


def read_tensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (as NumPy arrays) and string metadata of a safetensors or PyTorch file,
    every size checked against the file and the memory available before it is read."""
    path = Path(path)
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise ScratchRNNError(f"{path} {what}; pass a .safetensors or .pt state dict")
    with open_regular(path, "state dict", "pass a .safetensors or .pt state dict") as f:
        head = f.read(9)
    # a bare pickle begins with 0x80, and so does a safetensors header 128 bytes long (mod
    # 256): the JSON that begins at byte 8 tells them apart
    pickled = head[:1] == b"\x80" and head[8:9] != b"{"
    if head[:4] == b"PK\x03\x04" or pickled:  # torch.save's zip, or a bare pickle
        return _read_torch(path, pickled), {}
    return _read_safetensors(path)


def _check_memory(path, parts: dict[str, int]) -> None:
    limits.check_memory(parts, f"importing {path}", {k: "import it on a machine with more "
                                                      "memory" for k in parts})


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The format is a u64 header length, a JSON header (name -> dtype, shape, data_offsets,
    and string `__metadata__`), then the data: all of it is checked before any tensor is read."""
    with open_regular(path, "state dict", "pass a .safetensors or .pt state dict") as f:
        size = os.fstat(f.fileno()).st_size
        n = int.from_bytes(f.read(8), "little")
        if not 2 <= n <= size - 8 or f.read(1) != b"{":
            raise bad(path, "it is neither a safetensors file nor a PyTorch .pt file")
        if n > HEADER_BYTES:
            raise bad(path, f"its safetensors header is {n:,} bytes, more than the "
                       f"{HEADER_BYTES:,} the names and shapes of a model's tensors need")
        try:
            header = json.loads(b"{" + f.read(n - 1))
        except RecursionError:
            raise bad(path, "its safetensors header is nested too deeply") from None
        except ValueError as e:  # also UnicodeDecodeError and numbers of 4300 digits
            raise bad(path, f"its safetensors header is not JSON ({str(e)[:60]})") from None
        if not isinstance(header, dict):
            raise bad(path, "its safetensors header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise bad(path, "its safetensors __metadata__ is not a dict of strings")
        if len(header) > MAX_TENSORS:
            raise _too_many(path, len(header))
        specs = _safetensors_specs(path, header, size - 8 - n)
        _check_memory(path, {"tensors": sum(e - b for _, _, b, e in specs.values()),
                             "their float64 copies": sum(8 * math.prod(s) for _, s, _, _ in
                                                         specs.values())})
        tensors = {}
        for name, (dtype, shape, begin, end) in specs.items():
            f.seek(8 + n + begin)
            data = f.read(end - begin)
            if len(data) != end - begin:
                raise bad(path, f"tensor {keystr(name)} is cut short")
            arr = np.frombuffer(data, dtype).reshape(shape)
            if dtype == "<u2":  # bfloat16: the top half of a float32
                arr = (arr.astype(np.uint32) << 16).view(np.float32)
            tensors[name] = arr
    return tensors, meta


def _safetensors_specs(path, header: dict, data_bytes: int) -> dict:
    """name -> (numpy dtype, shape, begin, end) of every header entry, or one clear error: a
    dtype that is no real float, a shape or offsets outside the file, tensors that overlap."""
    specs, taken = {}, []
    for name, entry in header.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("dtype"), str)):
            raise bad(path, f"its safetensors header entry {keystr(name)} has no dtype")
        if entry["dtype"] not in SAFETENSORS_FLOATS:
            raise not_float(path, name, schema.show(entry["dtype"]))
        dtype, shape, offsets = (SAFETENSORS_FLOATS[entry["dtype"]], entry.get("shape"),
                                 entry.get("data_offsets"))
        ints = lambda v, n: (isinstance(v, list) and len(v) <= n  # noqa: E731
                             and all(type(x) is int and 0 <= x < 2**63 for x in v))
        if not ints(shape, MAX_DIMS) or not (ints(offsets, 2) and len(offsets) == 2):
            raise bad(path, f"tensor {keystr(name)} has no valid shape and data_offsets")
        begin, end = offsets
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        if not begin <= end <= data_bytes or end - begin != nbytes:
            raise bad(path, f"tensor {keystr(name)} declares {entry['dtype']} {shape} "
                       f"({nbytes:,} bytes) at bytes {offsets}, but the file holds "
                       f"{data_bytes:,} bytes of data")
        specs[name] = (dtype, tuple(shape), begin, end)
        taken.append((begin, end))
    taken.sort()
    if any(b < e0 for (_, e0), (b, _) in zip(taken, taken[1:], strict=False)):
        raise bad(path, "its tensors overlap in the file; save it with safetensors")
    return specs


def _read_torch(path: Path, legacy: bool) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise bad(path, "it is a PyTorch pickle, which only PyTorch may read (with "
                   "weights_only=True) and PyTorch is not installed; pip install torch, or "
                   "save the state dict with safetensors") from None
    if legacy:  # its storages are sized by the pickle itself: no bound to check first
        raise bad(path, "it is in PyTorch's legacy (pre-1.6) format, whose sizes cannot be "
                   "checked before loading; save it again with torch.save (or safetensors)")
    try:
        with (open_regular(path, "state dict", "pass a .pt state dict") as f,
              zipfile.ZipFile(f) as zf):
            total, stored = _zip_size(path, zf)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as e:
        raise bad(path, f"it is not a readable PyTorch zip ({type(e).__name__})") from None
    _check_memory(path, {"the file's members": total})
    try:
        with warnings.catch_warnings():  # its notes on pickle protocols are not the user's
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=stored)
    except Exception as e:  # UnpicklingError for anything but plain weights, or corruption
        raise bad(path, f"torch.load(weights_only=True) refused it ({type(e).__name__}); "
                   "pass a plain state dict") from None
    return _torch_arrays(path, obj, total, torch)


def _zip_size(path, zf: zipfile.ZipFile) -> tuple[int, bool]:
    """The bytes a .pt's members inflate to, from its central directory alone, and whether
    all are stored (then torch.load can map them rather than read them)."""
    total, stored = 0, True
    storages = sum("/data/" in info.filename for info in zf.infolist())
    if storages > MAX_TENSORS:  # known here, before torch.load spends seconds on them
        raise _too_many(path, storages)
    for info in zf.infolist():
        name = keystr(info.filename)
        if problem := zip_member_problem(info) or inflation_problem(info):
            raise bad(path, f"its member {name} {problem}")
        if info.filename.endswith(".pkl") and info.file_size > PICKLE_BYTES:
            raise bad(path, f"its pickle {name} declares {info.file_size:,} bytes, more than "
                       f"a state dict's names and shapes need ({PICKLE_BYTES:,})")
        total += info.file_size
        stored &= info.compress_type == zipfile.ZIP_STORED
    return total, stored


def _torch_arrays(path, obj, total: int, torch) -> dict[str, np.ndarray]:
    """The state dict torch.load gave, as NumPy arrays: only named, dense, real-float CPU
    tensors, none a view larger than its storage (a 1-element storage expanded to 10^10
    elements is a few bytes on disk), their sum within what the file holds."""
    if isinstance(obj, dict) and len(obj) == 1 and isinstance(next(iter(obj.values())), dict):
        obj = next(iter(obj.values()))  # {"state_dict": {...}} or {"model": {...}}
    if not isinstance(obj, dict):
        what = "one tensor" if isinstance(obj, torch.Tensor) else f"a {type(obj).__name__}"
        raise bad(path, f"it holds {what}, not a state dict (a dict of tensors); save "
                   "model.state_dict()")
    if len(obj) > MAX_TENSORS:
        raise _too_many(path, len(obj))
    arrays, expanded = {}, 0
    for name, t in obj.items():
        if not isinstance(name, str):
            raise bad(path, f"its state dict has a key {schema.show(name)} that is not a "
                       "string; save model.state_dict()")
        if not isinstance(t, torch.Tensor):
            raise bad(path, f"{keystr(name)} holds a Python {type(t).__name__}, not a tensor; "
                       "save model.state_dict() alone")
        if t.layout != torch.strided or t.device.type != "cpu":
            what = t.device.type if t.device.type != "cpu" else str(t.layout)
            raise bad(path, f"tensor {keystr(name)} is a {what} tensor, not a dense one of "
                       "values; save model.state_dict() of a model on the CPU")
        if str(t.dtype).removeprefix("torch.") not in TORCH_FLOATS:
            raise not_float(path, name, t.dtype)
        nbytes = t.numel() * t.element_size()
        if nbytes > t.untyped_storage().nbytes():
            raise bad(path, f"tensor {keystr(name)} is a view of {t.numel():,} elements over "
                       f"{t.untyped_storage().nbytes():,} bytes (strides {list(t.stride())}); "
                       "save tensor.clone() instead of an expanded view")
        expanded += nbytes
        if expanded > 2 * total + BOMB_BYTES:  # views share storages: tied weights, at most
            raise bad(path, "its tensors are views that repeat the same storage, expanding "
                       f"{total:,} bytes to more than {expanded:,}")
    _check_memory(path, {"its tensors as float64": 8 * sum(t.numel() for t in obj.values())})
    for name, t in obj.items():
        t = t.detach().float() if t.dtype == torch.bfloat16 else t.detach()
        arrays[name] = t.contiguous().numpy().copy()  # our own memory, not the file's map
    return arrays
