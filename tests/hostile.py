"""Hostile checkpoints for the tests: .npy members with any header, zips written by hand (with
duplicate names or a deflated decompression bomb), and JSON spliced in as raw text (nesting
too deep for json.dumps, NaN tokens)."""

import io
import json
import struct
import zlib

import numpy as np

BOMB_CHUNK = 1 << 20


def npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(arr), allow_pickle=True)
    return buf.getvalue()


def npy_header(shape, dtype) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(
        np.dtype(dtype)), "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def meta_npy(meta: dict, raw: dict | None = None) -> bytes:
    """The metadata member; each value in `raw` (JSON text) replaces the string
    "@raw:<key>@" wherever the metadata holds it."""
    text = json.dumps(meta)
    for key, value in (raw or {}).items():
        text = text.replace(json.dumps(f"@raw:{key}@"), value)
    return npy(np.array(text))


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deflated_zeros(head: bytes, n_zeros: int) -> tuple[bytes, int]:
    """Raw deflate of head + n_zeros zero bytes, built from one compressed 1 MiB block
    repeated (a full flush makes blocks independent), so a 3 GB member costs milliseconds."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [co.compress(head) + co.flush(zlib.Z_FULL_FLUSH)]
    block = co.compress(bytes(BOMB_CHUNK)) + co.flush(zlib.Z_FULL_FLUSH)
    parts.append(block * (n_zeros // BOMB_CHUNK - 1))
    parts.append(co.compress(bytes(n_zeros % BOMB_CHUNK + BOMB_CHUNK)) + co.flush())
    return b"".join(parts), len(head) + n_zeros


def write_zip(path, members) -> None:
    """A zip written by hand: `members` is a list of (name, bytes) stored as they are, or
    (name, (head, n_zeros)) deflated. Duplicate names are kept. The CRC of a bomb is left 0:
    a reader only finds out once it has inflated all of it, which is what the tests rule out."""
    out, central = io.BytesIO(), []
    for name, data in members:
        raw = name.encode()
        if isinstance(data, tuple):
            body, size = _deflated_zeros(*data)
            method, crc = 8, 0
        else:
            body, size, method, crc = data, len(data), 0, zlib.crc32(data)
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc,
                              len(body), size, len(raw), 0) + raw)
        out.write(body)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0,
                                   0x21, crc, len(body), size, len(raw), 0, 0, 0, 0, 0,
                                   offset) + raw)
    start = out.tell()
    cd = b"".join(central)
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd),
                          start, 0))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def members_of(arrays: dict) -> list:
    """np.savez's members (name.npy, .npy bytes) of a dict of arrays."""
    return [(f"{k}.npy", npy(v)) for k, v in arrays.items()]


# round 3: reads
def special_files(d) -> dict:
    """Paths in `d` (created) that are no regular file, by what they are: a FIFO (opening it
    blocks), a socket, /dev/zero (never ends), a symlink to /dev/urandom and a folder."""
    import os
    import pathlib
    import socket

    d = pathlib.Path(d)
    d.mkdir(parents=True, exist_ok=True)
    os.mkfifo(d / "fifo")
    (d / "urandom").symlink_to("/dev/urandom")
    (d / "folder").mkdir()
    found = {"fifo": d / "fifo", "zero": pathlib.Path("/dev/zero"), "urandom": d / "urandom",
             "folder": d / "folder"}
    if len(str(d / "socket")) < 100:  # AF_UNIX paths are short
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(d / "socket"))  # the file stays when the socket is closed
        found["socket"] = d / "socket"
    return found
