"""OS errors are reported by their cause and file, in one line with what to do: provoked for real
where the test can (as root too: a path through a file, a 300-character name, /dev/full,
RLIMIT_FSIZE), and the mapping itself checked for every errno it names."""

import errno
import json
import os
import resource
import subprocess
import sys

import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.fsutil import (
    atomic_write,
    atomic_write_bytes,
    describe_os_error,
    make_dir,
    open_regular,
)

EXPECTED = {
    errno.ENOSPC: "no space left",
    errno.EDQUOT: "quota",
    errno.EFBIG: "ulimit -f",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "does not exist",
    errno.ENOTDIR: "is a file, not a folder",
    errno.ENAMETOOLONG: "name is too long",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.EISDIR: "is a folder",
}


@pytest.mark.parametrize("code", sorted(EXPECTED), ids=errno.errorcode.get)
def test_each_errno_has_its_own_cause(code, tmp_path):
    msg = describe_os_error(OSError(code, os.strerror(code)), tmp_path / "x.npz", "checkpoint")
    assert msg.startswith(f"could not write the checkpoint {tmp_path / 'x.npz'}: ")
    assert EXPECTED[code] in msg
    assert ("disk space" in msg) == (code == errno.ENOSPC)  # only a full disk says so
    assert "\n" not in msg and "; " in msg  # one line, with what to do


def test_unknown_errno_says_strerror(tmp_path):
    msg = describe_os_error(OSError(errno.EIO, os.strerror(errno.EIO)), tmp_path / "f", "plot")
    assert os.strerror(errno.EIO) in msg


def _refused(match, fn, *args):
    with pytest.raises(sr.ScratchRNNError, match=match) as info:
        fn(*args)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_missing_folder(tmp_path):
    msg = _refused("does not exist", atomic_write_bytes, tmp_path / "gone" / "x.npz", b"x")
    assert str(tmp_path / "gone") in msg and "disk space" not in msg


def test_path_through_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    _refused("is a file, not a folder", atomic_write_bytes, tmp_path / "afile" / "x.npz", b"x")
    _refused("is a file, not a folder", make_dir, tmp_path / "afile" / "sub", "pass another")


def test_name_too_long(tmp_path):
    msg = _refused("name is too long", atomic_write_bytes, tmp_path / ("n" * 300), b"x")
    assert "disk space" not in msg
    _refused("name is too long", make_dir, tmp_path / ("d" * 300), "pass a shorter --out")
    assert sorted(os.listdir(tmp_path)) == ["cwd"]  # no temp file left behind


def test_target_is_a_folder(tmp_path):
    (tmp_path / "dir").mkdir()
    _refused("is a folder", atomic_write_bytes, tmp_path / "dir", b"x")
    assert sorted(os.listdir(tmp_path)) == ["cwd", "dir"]


def test_no_space_for_real(tmp_path):
    """The kernel's own ENOSPC: the write goes through /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")

    def write(f):
        with open("/dev/full", "wb", buffering=0) as full:
            full.write(b"x" * 4096)

    msg = _refused("no space left on the device", atomic_write, tmp_path / "x.npz", write,
                   "checkpoint")
    assert "free some disk space" in msg and str(tmp_path / "x.npz") in msg
    assert sorted(os.listdir(tmp_path)) == ["cwd"]


def test_permission_denied(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores file permissions; the mapping is checked above")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        _refused("permission denied", atomic_write_bytes, ro / "x.npz", b"x")
    finally:
        ro.chmod(0o700)


def test_read_only_file_system():
    pytest.skip("no read-only file system can be made here without mount privileges; the "
                "EROFS mapping is checked in test_each_errno_has_its_own_cause")


def _cli(args, stdout=None, limit=None):
    def preexec():
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.run([sys.executable, "-m", "scratchrnn", *args], env=env, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=120, preexec_fn=preexec)


@pytest.fixture
def run(small_text, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--text", str(small_text), "--out", str(out), "--hidden", "16",
                 "--batch", "2", "--seq-len", "8", "--max-steps", "2", "--eval-every", "2",
                 "--sample-length", "0", "--quiet"]) == 0
    return out


@pytest.mark.parametrize("length", ["20", "200000"])  # within and far beyond the buffer
def test_sample_to_a_full_device(run, length):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        proc = _cli(["sample", str(run), "--length", length], stdout=full)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("scratchrnn: error: could not write the sample to standard "
                               "output: no space left on the device")


def test_train_with_its_log_to_a_full_device(small_text, tmp_path):
    """A log that cannot be written stops training like a closed pipe: it saves, says where
    in one line, and exits non-zero; nothing trained is lost."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    out = tmp_path / "r"
    with open("/dev/full", "w") as full:
        proc = _cli(["train", "--text", str(small_text), "--out", str(out), "--hidden", "8",
                     "--batch", "2", "--seq-len", "8", "--max-steps", "50", "--quiet"],
                    stdout=full)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 141 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("scratchrnn: stdout could not be written (No space left on "
                               "device) at step ")
    step = int(lines[0].split(" at step ")[1].split(";")[0])
    assert sr.load_checkpoint(out).meta["step"] == step >= 1


def test_eval_to_a_full_device(run):
    """No command but sample and train catches a failing stdout: main says so in one line,
    and Python's flush at exit does not fail a second time with a traceback."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    with open("/dev/full", "w") as full:
        proc = _cli(["eval", str(run), "--json"], stdout=full)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert lines[0] == ("scratchrnn: error: could not write the output to standard output: no "
                        "space left on the device; free some disk space or write to another "
                        "folder")


def test_file_size_limit_names_its_cause(run):
    proc = _cli(["plot", str(run), "--out", str(run.parent / "big.png")], limit=1000)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "could not write the plot" in lines[0] and "ulimit -f" in lines[0]
    assert not (run.parent / "big.png").exists()
    assert not [p for p in os.listdir(run.parent) if p.endswith(".tmp")]


# Reads: fsutil.open_regular, the one way the package opens a file to read. Run in a child
# process with an alarm and a memory cap, so that a FIFO which blocks or a device which never
# ends fails the test instead of hanging it.
_OPEN = """
import json, os, signal, sys
from scratchrnn import fsutil
from scratchrnn.errors import ScratchRNNError
signal.signal(signal.SIGALRM, lambda *_: sys.exit("still reading after 10 s"))
if sys.argv[2] == "swap":  # the path was a regular file when it was looked at
    real = os.stat(sys.argv[3])
    fsutil.os.stat = lambda path: real
signal.alarm(10)
try:
    with fsutil.open_regular(sys.argv[1], "checkpoint", "pass a checkpoint") as f:
        print(json.dumps(["read", len(f.read())]))
except ScratchRNNError as e:
    print(json.dumps(["refused", str(e)]))
"""


def _open_in_child(path, *how) -> list:
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _OPEN, str(path), *(how or ["plain"])],
                          env=env, capture_output=True, text=True, timeout=60, preexec_fn=cap)
    assert proc.returncode == 0, proc.stderr[-500:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def special(tmp_path_factory):
    from hostile import special_files

    return special_files(tmp_path_factory.mktemp("special"))


@pytest.mark.parametrize("kind,says", [
    ("fifo", "is a FIFO (named pipe), not a regular file"),
    ("zero", "is a character device, not a regular file"),
    ("urandom", "is a character device (through a symlink), not a regular file"),
    ("folder", "is a folder, not a regular file"),
    ("socket", "is a socket, not a regular file")])
def test_open_regular_refuses_what_is_no_regular_file(special, kind, says):
    if kind not in special:
        pytest.skip("the temp folder's path is too long for a socket")
    what, msg = _open_in_child(special[kind])
    assert what == "refused" and msg == (f"the checkpoint {special[kind]} {says}; pass a "
                                         "checkpoint")


def test_open_regular_refuses_a_fifo_swapped_in_after_the_look(special, tmp_path):
    """Between the stat and the open the path became a FIFO: the open does not block, and
    the descriptor it gives is refused."""
    (tmp_path / "plain").write_bytes(b"x")
    what, msg = _open_in_child(special["fifo"], "swap", tmp_path / "plain")
    assert what == "refused" and "is a FIFO (named pipe), not a regular file" in msg


def test_open_regular_bounds_the_read(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    with pytest.raises(sr.ScratchRNNError, match=r"is 1000 bytes, more than the 999 bytes it "
                       r"may be; pass a smaller one"):
        open_regular(path, "file", "pass a smaller one", max_bytes=999)
    with open_regular(path, "file", "", max_bytes=1000) as f:
        with open(path, "ab") as g:
            g.write(b"y" * 500)  # a file that grows while it is read: read as it was
        assert f.read() == b"x" * 1000 and f.seek(0, os.SEEK_END) == 1000
    _refused("could not read the file .*: it does not exist; pass one", open_regular,
             tmp_path / "nope", "file", "pass one")
