"""The library names parameters; the front ends spell them (issue 29).

A library message names a parameter as the Python API spells it, in backticks (`hidden`); the
command line turns that into its flag in one place (errors.as_flag, `--hidden`), the server into
its JSON field. A TrainConfig checks itself when it is made."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import scratchrnn as sr
from scratchrnn.errors import as_flag, spelled

SRC = Path(__file__).resolve().parents[1] / "src" / "scratchrnn"
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
# Modules whose every message names parameters: none of their strings may spell a flag.
CLEAN = ("config", "sample|sampler", "limits", "errors",  # a|b: the name before|after issue 29
         "corpus", "prepare", "sources", "text", "page", "visualize", "checks", "export",
         "html_export", "onnx_export", "torch_import", "server", "owner", "resume", "evaluation")
# Flag spellings still left in library strings outside the CLI: this may only go down. They
# are not parameters named in a message but command-line output and commands a user types:
# training's progress lines (loop.py: "raise --max-steps or --epochs to go on",
# "(--allow-new-text)", "update skipped (--on-nan skip)"), printed as they are; and the
# commands "continue with: scratchrnn train --resume RUN" (loop.py twice, distributed.py) and
# "mpiexec -n 2 scratchrnn train --distributed mpi" (distributed.py).
LEFT = 8


def library_strings(path: Path) -> list[str]:
    """Every string constant in a module but its docstrings (which may show commands)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def module(names: str) -> Path:
    hits = [p for name in names.split("|") for p in SRC.rglob(f"{name}.py")
            if "__pycache__" not in p.parts]
    assert len(hits) == 1, names
    return hits[0]


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


@pytest.mark.parametrize("name", CLEAN)
def test_modules_that_name_parameters_spell_no_flag(name):
    flags = [s for s in library_strings(module(name)) if FLAG.search(s)]
    assert not flags, f"{name} spells flags; name the parameter in backticks: {flags}"


def test_flag_spellings_in_the_library_only_go_down():
    n = sum(len(FLAG.findall(s)) for p in SRC.rglob("*.py")
            if "__pycache__" not in p.parts and "cli" not in p.parts
            and p.stem not in ("cli", "entry")
            for s in library_strings(p))
    assert n <= LEFT, (f"{n} flag spellings in library strings (at most {LEFT}): name the "
                       "parameter in backticks instead; the CLI spells it")


@pytest.mark.parametrize("option", ["weight_drop", "locked_dropout"])
def test_a_model_option_is_named_in_two_source_files(option):
    """docs/architecture.md's recipe: the maths and its ModelConfig field (nn/model.py), the
    TrainConfig field with its help and range (store/config.py). The flag, the checkpoint
    schema, resume's comparison and the run's model are derived from those."""
    spellings = re.compile(rf"\b{option}\b|{as_flag(option)}\b")
    files = sorted(str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                   if "__pycache__" not in p.parts and spellings.search(p.read_text()))
    assert files == ["nn/model.py", "store/config.py"], files


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
