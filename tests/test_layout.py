"""The package's layout is its architecture (docs/architecture.md): each subpackage's docstring
says what it may import, and this test reads every module's imports and holds the tree to it.
No import circles, no module importing a higher tier, no internal import hidden in a function
(outside the CLI, which defers commands' modules for start-up time), no module over ~400 lines."""

import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "scratchrnn"
MAX_LINES = 420
# start-up time: the entry point sets up Ctrl-C and BLAS threads before NumPy loads, and
# `scratchrnn sample` need not load the server or the exporters
LAZY_OK = {"scratchrnn.cli.entry", "scratchrnn.cli.commands"}


def subpackages() -> dict[str, str]:
    return {p.parent.name: ast.get_docstring(ast.parse(p.read_text())) or ""
            for p in sorted(PKG.glob("*/__init__.py"))}


def allowed() -> dict[str, set[str]]:
    """Package -> the packages it may import, read from its docstring's 'May import:' line."""
    names = set(subpackages())
    out = {}
    for pkg, doc in subpackages().items():
        m = re.search(r"May import:(.*)", doc, flags=re.S)
        assert m, f"scratchrnn/{pkg}/__init__.py must say what it may import ('May import: ...')"
        said = m.group(1)
        out[pkg] = names if "every tier" in said else {w for w in re.findall(r"\w+", said)
                                                       if w in names}
    return out


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def type_checking_lines(tree) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for sub in node.body:
                lines.update(range(sub.lineno, sub.end_lineno + 1))
    return lines


def imports(path: Path):
    """(imported scratchrnn module, line, at module level?) for every runtime import."""
    tree = ast.parse(path.read_text())
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    skip = type_checking_lines(tree)
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom | ast.Import) or node.lineno in skip:
            continue
        at_top = id(node) in top
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            targets = []
            for a in node.names:  # `from . import cells` imports a module, not a name
                sub = f"{base}.{a.name}"
                is_mod = (PKG.parent / sub.replace(".", "/")).with_suffix(".py").exists() or \
                    (PKG.parent / sub.replace(".", "/")).is_dir()
                targets.append(sub if is_mod else base)
        for t in targets:
            if t == "scratchrnn" or t.startswith("scratchrnn."):
                yield t, node.lineno, at_top


MODULES = sorted(p for p in PKG.rglob("*.py") if "__pycache__" not in p.parts)


def tier_of(module: str) -> str:
    """'' for the base tier (modules directly in scratchrnn/), else the subpackage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else ""


def test_every_subpackage_says_what_it_holds_and_may_import():
    docs = subpackages()
    assert {"nn", "data", "store", "training", "cli"} <= set(docs)
    for pkg, doc in docs.items():
        assert len(doc.split("May import:")[0].strip()) > 30, f"{pkg}: say what it holds"
    allowed()


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_follow_the_tiers(path):
    me = module_name(path)
    if me in ("scratchrnn", "scratchrnn.__main__"):
        return  # the API's front door loads everything on demand
    mine, rules = tier_of(me), allowed()
    for target, line, at_top in imports(path):
        theirs = tier_of(target)
        where = f"{path.relative_to(PKG.parent)}:{line} imports {target}"
        assert target != "scratchrnn", f"{where}: import the module, not the package"
        if mine == "":
            assert theirs == "", f"{where}: the base tier imports only the base tier"
        elif theirs not in ("", mine):
            assert theirs in rules[mine], f"{where}: {mine}/ may import {sorted(rules[mine])}"
        if not at_top and me not in LAZY_OK:
            raise AssertionError(f"{where} inside a function: import it at the top, where a "
                                 "reader sees the module's edges")


def test_no_import_circles():
    graph = {module_name(p): {t for t, _, _ in imports(p)} for p in MODULES}
    graph = {m: {t for t in ts if t in graph and t != m} for m, ts in graph.items()}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for t in sorted(graph[m]):
            if t != "scratchrnn":  # the package's __init__ imports lazily, by name
                visit(t)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_modules_stay_readable_in_one_sitting(path):
    n = len(path.read_text().splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG.parent)} has {n} lines: split it by concern"


def test_the_checks_find_what_they_check(tmp_path, monkeypatch):
    """The rules can fail: a module importing upward, and a lazy internal import, are caught."""
    bad = PKG / "nn" / "model.py"
    text = bad.read_text()
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (
        text + "\nfrom ..training import loop\n\ndef f():\n    from . import cells\n"
        if self == bad else Path.read_bytes(self).decode()))
    with pytest.raises(AssertionError, match="nn/ may import"):
        test_imports_follow_the_tiers(bad)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_private_name_crosses_a_module(path):
    """What another module needs is public: an underscored name is the module's own business."""
    tree = ast.parse(path.read_text())
    modules = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
               and n.level for a in n.names}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, f"{path.relative_to(PKG.parent)}:{node.lineno} imports {private}"
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
                and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            raise AssertionError(f"{path.relative_to(PKG.parent)}:{node.lineno} uses "
                                 f"{node.value.id}.{node.attr}")


def test_each_limit_a_user_meets_is_one_constant_in_limits():
    """The layer limit was 1000 in one module and 1024 in another: a limit a user can run into
    is assigned once, in limits.py, and the modules that check it import it."""
    import scratchrnn.limits as limits

    names = [n for n in vars(limits) if n.startswith("MAX_")]
    assert {"MAX_LAYERS", "MAX_HIDDEN", "MAX_BODY", "MAX_CLAMP", "MAX_PAGE_CHARS"} <= set(names)
    for path in MODULES:
        if path.name == "limits.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    assert not (isinstance(target, ast.Name) and target.id in names), (
                        f"{path.relative_to(PKG.parent)}:{node.lineno} assigns {target.id}, "
                        "which limits.py holds")
