"""examples/scratchrnn.ipynb runs from top to bottom (nbclient + ipykernel, the tiny
configuration, the book from the shared data, in a working folder of its own), so it never
rots; and it is committed without outputs."""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from conftest import shared_file

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "scratchrnn.ipynb"
DOCUMENTED_MODULES = {"inside", "interop"}  # docs/usage.md imports from these


def test_the_notebook_is_committed_clean():
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)


def test_the_notebook_uses_only_the_public_api():
    """It failed in its first cell on `sr.data.book_path()`, a module `import scratchrnn` does
    not bind: every `sr.NAME` must be in scratchrnn.__all__, and a `from scratchrnn.MODULE
    import` must name a module the docs document."""
    import scratchrnn as sr

    nb = json.loads(NOTEBOOK.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    used = set(re.findall(r"\bsr\.(\w+)", code))
    assert used and used <= set(sr.__all__), used - set(sr.__all__)
    modules = set(re.findall(r"\b(?:from|import) scratchrnn\.(\w+)", code))
    assert modules <= DOCUMENTED_MODULES, modules


@pytest.mark.parametrize("source", ["the book, as train gets it", "SCRATCHRNN_NOTEBOOK_TEXT"])
def test_the_notebook_runs(source, tmp_path, monkeypatch):
    """As written from a fresh clone: the book comes from the downloader's cache (seeded as
    .ci/run seeds it, so no network), or from the file SCRATCHRNN_NOTEBOOK_TEXT names."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
    nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed")
    book = shared_file("pg98.txt")
    # The kernel is a new process: it inherits this environment, not pytest's sys.path.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))
    monkeypatch.delenv("SCRATCHRNN_NOTEBOOK_TEXT", raising=False)
    if source == "SCRATCHRNN_NOTEBOOK_TEXT":
        monkeypatch.setenv("SCRATCHRNN_NOTEBOOK_TEXT", str(book))
        monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "empty-cache"))
    else:
        (tmp_path / "cache").mkdir(exist_ok=True)
        shutil.copy(book, tmp_path / "cache" / "pg98.txt")
        monkeypatch.setenv("SCRATCHRNN_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("SCRATCHRNN_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on failure
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    data = [o["data"] for o in outputs if "data" in o]
    assert not [o for o in outputs if o.output_type == "error"]
    assert "corpus: pg98; tiny configuration: True" in text and "60 steps in" in text
    assert "downloading" not in text  # the cached book, as train reads it
    assert "--- temperature 0.8\nIt was" in text
    assert any("image/png" in d for d in data)  # the loss curve
    html = [d["text/html"] for d in data if "text/html" in d]
    assert any("ScratchRNNInside.render" in h for h in html)  # the inspection, inline
    assert any("| property | layer |" in d.get("text/markdown", "") for d in data)
    # the inspection's surprisal and evaluate agree to 1e-6, as the notebook prints them
    line = next(x for x in text.splitlines() if x.startswith("surprisal "))
    ours, theirs = float(line.split()[1]), float(line.rsplit(" ", 1)[1])
    assert abs(ours - theirs) < 1e-6
    assert "held at +1" in text and "held at -1" in text
    assert (tmp_path / "runs" / "notebook" / "checkpoint.npz").is_file()
