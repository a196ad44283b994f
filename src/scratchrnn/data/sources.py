"""What `--text` names, as the list of files to read: a file, a folder (every text file inside,
recursively, in sorted order), a glob (`'src/**/*.c'`), or several of these. The files are then
cleaned one by one and joined with a newline (prepare.encode_file), streaming as for one file.

Files found in a folder or by a glob are sniffed (the first 64 kB): NUL bytes, or bytes that are
not valid in the encoding (UTF-8 unless --encoding), mark a binary file, which is skipped and
counted in one warning. Hidden files and folders (.git, .venv) are left out; empty files add
nothing. Symlinked folders are followed, and a link back into a folder being walked is a loop,
refused with one line. A file named explicitly is always read, as a single --text file is.
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from ..errors import ScratchRNNError
from .prepare import open_text
from .text import NUL_SNIFF, incremental_decoder, printable

GLOB_CHARS = frozenset("*?[")


def is_glob(spec: str) -> bool:
    return any(c in GLOB_CHARS for c in spec)


def specs_of(text) -> list[str]:
    """--text as a list of strings (a saved config holds one string or a list)."""
    if not isinstance(text, str | os.PathLike | list | tuple) or not all(
            isinstance(t, str | os.PathLike) for t in ([text] if isinstance(
                text, str | os.PathLike) else text)):
        raise ScratchRNNError(f"`text` must be a path or a list of paths, got {text!r}"[:200])
    return [str(text)] if isinstance(text, str | os.PathLike) else [str(t) for t in text]


def absolute(text):
    """--text with every path made absolute (a saved run then resumes from any folder); a
    single string stays a string, several stay a list."""
    if text is None or isinstance(text, str | os.PathLike):
        return None if text is None else os.path.abspath(text)
    return [os.path.abspath(t) for t in text]


def is_binary(path: Path, encoding: str | None = None) -> bool:
    """NUL characters or undecodable bytes in the first 64 kB (a multi-byte character cut at
    the end of the sample is not counted against it)."""
    with open_text(path, "listed") as f:
        head = f.read(NUL_SNIFF)  # what decode_chunks reads for NUL bytes too
    try:
        text = incremental_decoder(encoding or "utf-8").decode(head, final=False)
    except UnicodeError:  # not only UnicodeDecodeError: punycode, utf-16 raise it
        return True
    return "\x00" in text  # NUL characters: UTF-16 text has NUL bytes and is no binary file


def _walk(folder: Path, ancestors: frozenset[str]) -> Iterator[Path]:
    """Files under `folder` in sorted order, hidden entries left out, symlinks followed."""
    real = os.path.realpath(folder)
    if real in ancestors:
        raise ScratchRNNError(f"{folder} is a symlink loop (it leads back to {real}); remove "
                              "the link or pass the folders it should read")
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as e:
        raise ScratchRNNError(f"cannot list the folder {folder}: {e.strerror}; check its "
                              "permissions") from None
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            if entry.is_dir():
                yield from _walk(path, ancestors | {real})
                continue
            size = entry.stat().st_size if entry.is_file() else None
        except OSError as e:  # ELOOP from a file link that points at itself
            raise ScratchRNNError(f"{path} cannot be read ({e.strerror}); remove it or fix "
                                  "the link") from None
        if size:  # not a broken link, a socket or an empty file
            yield path


def _one(spec: str, encoding: str | None) -> tuple[list[Path], int]:
    """The files one spec names, and how many binary files it left out."""
    path = Path(spec)
    if path.is_symlink() and not path.exists():
        raise ScratchRNNError(f"{spec} is a broken symlink or a symlink loop; pass the file "
                              "or folder it should point to")
    if path.is_file():
        return [path], 0
    if path.is_dir():
        found, where = list(_walk(path, frozenset())), f"the folder {spec}"
    elif is_glob(spec):
        found = [Path(p) for p in sorted(glob.glob(spec, recursive=True))]
        found = [p for p in found if p.is_file() and p.stat().st_size > 0]
        where = f"the pattern {spec!r}"
        if not found:
            raise ScratchRNNError(f"{where} matches no file with text in it; check the pattern "
                                  "(quote it, so the shell leaves it to scratchrnn)")
    else:
        what = "is not a regular file" if path.exists() else "does not exist"
        raise ScratchRNNError(f"{spec} {what}; pass a text file, a folder or a glob with `text`")
    if not found:
        raise ScratchRNNError(f"{where} holds no files with anything in them; pass a folder "
                              "of text files")
    text = [p for p in found if not is_binary(p, encoding)]
    if not text:
        raise ScratchRNNError(f"{where} holds only binary or non-{encoding or 'UTF-8'} files "
                              f"({len(found)}); pass text files (or the right `encoding`)")
    return text, len(found) - len(text)


def expand(text, encoding: str | None = None) -> list[Path]:
    """The files `text` (one spec or several) names, each once, in order; binary files found
    in folders or by globs are skipped with one warning."""
    files, seen, skipped = [], set(), 0
    if not specs_of(text):
        raise ScratchRNNError("`text` names no file; pass a text file, a folder or a glob")
    for spec in specs_of(text):
        found, n = _one(spec, encoding)
        skipped += n
        for p in found:
            real = os.path.realpath(p)
            if real not in seen:
                seen.add(real)
                files.append(p)
    if skipped:
        warnings.warn(f"skipped {skipped} binary or non-{encoding or 'UTF-8'} file"
                      f"{'s' if skipped > 1 else ''} of `text` ({len(files)} read)",
                      stacklevel=2)
    return files


def name_of(text) -> str:
    """A run name for --text: a file's stem, a folder's name, a glob's fixed folder, and the
    first of several with +N for the rest; printable whatever the file is called."""
    specs = specs_of(text)
    if len(specs) > 1:
        return f"{name_of(specs[0])}+{len(specs) - 1}"
    return printable(_name(specs[0])) or "corpus"


def _name(spec: str) -> str:
    if is_glob(spec) and not Path(spec).exists():
        fixed = []
        for part in Path(spec).parts:
            if is_glob(part):
                break
            fixed.append(part)
        return Path(*fixed).resolve().name if fixed else "corpus"
    path = Path(spec)
    return (path.resolve().name or "corpus") if path.is_dir() else path.stem
