"""OS errors are reported by their cause and file, in one line with what to do: provoked for real
where the test can (as root too: a path through a file, a 300-character name, /dev/full,
RLIMIT_FSIZE), and the mapping itself checked for every errno it names."""

import errno
import os
import resource
import subprocess
import sys

import pytest

import scratchrnn as sr
from scratchrnn.cli import main
from scratchrnn.fsutil import atomic_write, atomic_write_bytes, describe_os_error, make_dir

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
