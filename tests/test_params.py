"""The library names parameters; the front ends spell them (issue 29).

A library message names a parameter as the Python API spells it, in backticks (`hidden`); the
command line turns that into its flag in one place (errors.as_flag, `--hidden`), the server into
its JSON field. A TrainConfig checks itself when it is made."""

import ast
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import scratchrnn as sr
from scratchrnn.cli.commands import main
from scratchrnn.errors import as_flag, spelled

SRC = Path(__file__).resolve().parents[1] / "src" / "scratchrnn"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")

def library_strings(path: Path) -> list[str]:
    """Every string constant in a module but its docstrings (which may show commands)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_every_training_option_is_its_flag():
    from scratchrnn.cli.commands import build_parser  # noqa: PLC0415 (the layout test knows cli's path)

    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    flags = {s for a in train._actions for s in a.option_strings}
    missing = [f.name for f in sr.TrainConfig.__dataclass_fields__.values()
               if as_flag(f.name) not in flags]
    assert not missing, f"TrainConfig fields without the flag as_flag names: {missing}"


@pytest.mark.parametrize("field, value", [("hidden", -1), ("lr", 0.0), ("cell", "cnn"),
                                          ("dropout", 1.0), ("min_lr", 1.0), ("seq_len", 2.5)])
def test_an_impossible_config_fails_where_it_is_made_naming_the_field(field, value):
    with pytest.raises(sr.ScratchRNNError, match=f"`{field}`"):
        sr.TrainConfig(**{field: value})


def test_a_preset_with_an_impossible_override_fails_naming_the_field():
    with pytest.raises(sr.ScratchRNNError, match="`batch`"):
        sr.with_preset("tiny", batch=0)


def test_the_api_names_parameters_and_the_cli_names_flags():
    with pytest.raises(sr.ScratchRNNError) as e:
        sr.TrainConfig(layer_norm=True, cell="lstm")
    assert "`layer_norm`" in str(e.value) and "--" not in str(e.value)
    assert spelled(str(e.value), as_flag).startswith("--layer-norm works with --cell gru")
    cli = subprocess.run([sys.executable, "-m", "scratchrnn", "train", "--hidden", "-1"],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode != 0
    assert cli.stderr.strip() == "scratchrnn: error: --hidden must be positive, got -1"


def test_spelled_leaves_what_is_not_a_parameter():
    assert spelled("use `top_k` or `a b` or ``", as_flag) == "use --top-k or `a b` or ``"
    assert spelled("`argmax`", {"argmax": '"argmax": true'}.get) == '"argmax": true'
    assert spelled("`length`", {}.get) == "length"


LIBRARY = sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts
                 and "cli" not in p.relative_to(SRC).parts)


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(SRC)))
def test_no_library_module_spells_a_flag(path):
    """Outside cli/ every message names parameters (and the commands a line points to come
    from the front end's errors.Voice): no string spells a flag."""
    flags = [s for s in library_strings(path) if FLAG.search(s)]
    assert not flags, f"{path.name} spells flags; name the parameter in backticks: {flags}"


# A run that diverges (on_nan skip: its later updates are skipped), stopped by a Ctrl-C at its
# first evaluation and then resumed when it is already finished: the lines it prints, as each
# front end says them.
DIVERGING = dict(hidden=8, batch=2, seq_len=4, max_steps=8, eval_every=4, sample_length=0,
                 on_nan="skip", optimizer="sgd", lr=1e38, clip_value=0, warmup=0)


@pytest.mark.parametrize("front, skipped, resume, go_on, new_text", [
    ("api", "update skipped (on_nan skip)", "train(resume='{out}')",
     "raise max_steps or epochs to go on", "(allow_new_text)"),
    ("cli", "update skipped (--on-nan skip)", "scratchrnn train --resume {out}",
     "raise --max-steps or --epochs to go on", "(--allow-new-text)"),
], ids=["api", "cli"])
def test_a_runs_lines_are_said_by_its_front_end(front, skipped, resume, go_on, new_text,
                                                 small_text, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    loop = sys.modules["scratchrnn.training.loop"]  # the module (sr.train is its function)
    real = loop.evaluate

    def evaluate(*args, **kw):
        signal.raise_signal(signal.SIGINT)
        return real(*args, **kw)

    monkeypatch.setattr(loop, "evaluate", evaluate)
    if front == "api":
        sr.train(sr.TrainConfig(text=str(small_text), out=str(out), **DIVERGING), progress=False)
    else:
        flags = [w for k, v in DIVERGING.items() for w in (as_flag(k), str(v))]
        assert main(["train", "--text", str(small_text), "--out", str(out), *flags,
                     "--quiet"]) == 130
    monkeypatch.setattr(loop, "evaluate", real)
    said = capsys.readouterr()
    lines = said.err.splitlines()
    assert lines and all(re.fullmatch(rf"step [34]: loss \S+, gradient norm \S+; "
                                      rf"{re.escape(skipped)}", line) for line in lines), lines
    assert (f"interrupted by SIGINT at step 4; saved {out / 'checkpoint.npz'} (continue with: "
            f"{resume.format(out=out)})\n") in said.out
    if front == "api":
        sr.train(resume=out, max_steps=4, progress=False)
    else:
        assert main(["train", "--resume", str(out), "--max-steps", "4", "--quiet"]) == 0
    assert capsys.readouterr().out == f"{out} is already finished at step 4; {go_on}\n"
    small_text.write_text(small_text.read_text() + "A changed ending.\n")
    if front == "api":
        sr.train(resume=out, max_steps=5, allow_new_text=True, progress=False)
    else:
        assert main(["train", "--resume", str(out), "--max-steps", "5", "--allow-new-text",
                     "--quiet"]) == 0
    assert f"from the start of an epoch {new_text}\n" in capsys.readouterr().out


def test_mpi_outside_mpiexec_says_how_each_front_end_starts_it(capsys):
    from scratchrnn.training.distributed import session  # noqa: PLC0415 (mpi4py: optional)

    with pytest.raises(sr.ScratchRNNError, match=r"mpiexec -n 2 python SCRIPT\.py") as e, \
            session():
        pass
    assert not FLAG.search(str(e.value))
    assert main(["train", "--distributed", "mpi"]) == 1
    assert ("e.g. mpiexec -n 2 scratchrnn train --distributed mpi ...; without mpiexec"
            in capsys.readouterr().err)


@pytest.mark.parametrize("option", ["weight_drop", "locked_dropout"])
def test_a_model_option_is_named_in_two_source_files(option):
    """docs/architecture.md's recipe: the maths and its ModelConfig field (nn/model.py), the
    TrainConfig field with its help and range (store/config.py). The flag, the checkpoint
    schema, resume's comparison and the run's model are derived from those."""
    spellings = re.compile(rf"\b{option}\b|{as_flag(option)}\b")
    files = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                   if "__pycache__" not in p.parts and spellings.search(p.read_text()))
    assert files == ["nn/model.py", "store/config.py"], files


def test_an_imported_run_takes_every_model_option_from_its_model(monkeypatch):
    """torch_import names only what the weights say: the run's other model options come from
    the model it builds (store.config.MODEL_OPTIONS), so a TrainConfig default that differs
    from ModelConfig's (here a stand-in: `recurrent_init` orthogonal) cannot split them."""
    import numpy as np  # noqa: PLC0415

    from scratchrnn.data.vocab import Vocab  # noqa: PLC0415
    from scratchrnn.interop import torch_import  # noqa: PLC0415
    from scratchrnn.store.config import MODEL_OPTIONS  # noqa: PLC0415

    V, E, H = 5, 3, 4
    rng = np.random.default_rng(0)
    tensors = {name: rng.random(shape, np.float32) for name, shape in (
        ("embed.weight", (V, E)), ("rnn.weight_ih_l0", (3 * H, E)),
        ("rnn.weight_hh_l0", (3 * H, H)), ("fc.weight", (V, H)))}
    monkeypatch.setattr(torch_import, "TrainConfig", lambda **kw: sr.TrainConfig(
        **{"recurrent_init": "orthogonal", **kw}))
    m, _, meta = torch_import.to_params(tensors, Vocab("abcde"))
    assert (m.model.cell, m.model.hidden_size, m.model.num_layers) == ("gru", H, 1)
    assert {c: meta["config"][c] for c in MODEL_OPTIONS.values()} == {
        c: meta["model"][k] for k, c in MODEL_OPTIONS.items()}


def test_every_parameter_a_library_message_names_is_a_flag():
    """What the CLI renders a backticked name as is an option some command has."""
    from scratchrnn.cli.commands import build_parser  # noqa: PLC0415
    from scratchrnn.errors import PARAMETER  # noqa: PLC0415

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    flags = {s for c in commands.values() for a in c._actions for s in a.option_strings}
    unknown = sorted({f"{p.relative_to(SRC)}: `{name}`" for p in SRC.rglob("*.py")
                      if "__pycache__" not in p.parts and "cli" not in p.parts
                      for s in library_strings(p) for name in PARAMETER.findall(s)
                      if as_flag(name) not in flags})
    assert not unknown, f"backticked names the command line has no flag for: {unknown}"
